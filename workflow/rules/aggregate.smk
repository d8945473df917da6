# Combine the processes and cycles of one experiment into a schema-validated result.json.


rule aggregate:
    input:
        spec=layout.SPEC,
        cycles=get_cycle_dirs,
    output:
        result=layout.RESULT,
    log:
        layout.log("aggregate", layout.EXPERIMENT_SUBJECT),
    benchmark:
        layout.benchmark("aggregate", layout.EXPERIMENT_SUBJECT)
    resources:
        gpu=0,
        llem_host=1,
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m llem aggregate --spec {input.spec:q} --out {output.result:q} > {log:q} 2>&1"

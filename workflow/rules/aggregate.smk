# Combine the processes and cycles of one experiment into a schema-validated result.json.


rule aggregate:
    input:
        spec="results/{campaign}/{run_id}/{exp}/spec.json",
        cycles=get_cycle_dirs,
    output:
        result="results/{campaign}/{run_id}/{exp}/result.json",
    log:
        "logs/aggregate/{campaign}/{run_id}/{exp}.log",
    benchmark:
        "benchmarks/aggregate/{campaign}/{run_id}/{exp}.tsv"
    resources:
        gpu=0,
        llem_host=1,
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m llem aggregate --spec {input.spec:q} --out {output.result:q} > {log:q} 2>&1"

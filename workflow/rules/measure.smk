# One experiment's measurement: environment, baseline and every measured cycle run as one
# group, so on a cluster they share one allocation (same node, same GPUs).


rule environment:
    input:
        spec=layout.SPEC,
    output:
        environment=layout.ENVIRONMENT,
    log:
        layout.log("environment", layout.EXPERIMENT_SUBJECT),
    benchmark:
        layout.benchmark("environment", layout.EXPERIMENT_SUBJECT)
    group:
        "measurement"
    resources:
        gpu=0,
        llem_host=1,
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m llem env --out {output.environment:q} > {log:q} 2>&1"


rule baseline:
    input:
        spec=layout.SPEC,
    output:
        baseline=layout.BASELINE,
    log:
        layout.log("baseline", layout.EXPERIMENT_SUBJECT),
    benchmark:
        layout.benchmark("baseline", layout.EXPERIMENT_SUBJECT)
    group:
        "measurement"
    resources:
        gpu=get_gpu_count,
        llem_host=HOST_UNITS,
        mem_mb=4000,
        runtime=15,
    shell:
        "python -m llem baseline --spec {input.spec:q} --out {output.baseline:q} > {log:q} 2>&1"


rule measure:
    input:
        spec=layout.SPEC,
        environment=rules.environment.output.environment,
        baseline=rules.baseline.output.baseline,
        model=get_model_marker,
        previous_cycle=get_previous_cycle,
    output:
        cycle=directory(layout.CYCLE),
    log:
        layout.log("measure", layout.CYCLE_SUBJECT),
    benchmark:
        layout.benchmark("measure", layout.CYCLE_SUBJECT)
    group:
        "measurement"
    resources:
        gpu=get_gpu_count,
        llem_host=HOST_UNITS,
        mem_mb=16000,
        runtime=120,
    shell:
        "python -m llem measure --spec {input.spec:q} --environment {input.environment:q}"
        " --baseline {input.baseline:q} --model-record {input.model:q}"
        " --out-dir {output.cycle:q} --cycle {wildcards.cycle:q} > {log:q} 2>&1"

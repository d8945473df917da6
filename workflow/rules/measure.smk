# One experiment's measurement: environment, baseline and every measured cycle run as one
# group, so on a cluster they share one allocation (same node, same GPUs).


rule environment:
    input:
        spec="results/{campaign}/{run_id}/{exp}/spec.json",
    output:
        environment="results/{campaign}/{run_id}/{exp}/environment.json",
    log:
        "logs/environment/{campaign}/{run_id}/{exp}.log",
    benchmark:
        "benchmarks/environment/{campaign}/{run_id}/{exp}.tsv"
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
        spec="results/{campaign}/{run_id}/{exp}/spec.json",
    output:
        baseline="results/{campaign}/{run_id}/{exp}/baseline.json",
    log:
        "logs/baseline/{campaign}/{run_id}/{exp}.log",
    benchmark:
        "benchmarks/baseline/{campaign}/{run_id}/{exp}.tsv"
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
        spec="results/{campaign}/{run_id}/{exp}/spec.json",
        environment="results/{campaign}/{run_id}/{exp}/environment.json",
        baseline="results/{campaign}/{run_id}/{exp}/baseline.json",
        model=get_model_marker,
        previous_cycle=get_previous_cycle,
    output:
        cycle=directory("results/{campaign}/{run_id}/{exp}/cycle_{cycle}"),
    log:
        "logs/measure/{campaign}/{run_id}/{exp}/cycle_{cycle}.log",
    benchmark:
        "benchmarks/measure/{campaign}/{run_id}/{exp}/cycle_{cycle}.tsv"
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

# Materialize each model once, shared by every campaign: resources/models/<model_key>/.


rule prepare_model:
    input:
        # resources/model_specs/<model_key>.json holds only what the model key fixes, so
        # neither another campaign with this model nor an edit of an experiment's other
        # fields prepares the model again (and re-measures everything downstream).
        spec=ancient(get_model_spec),
    output:
        marker=layout.MODEL_MARKER,
    params:
        models_dir=get_models_dir_of_output,
    log:
        layout.log("prepare_model", layout.MODEL_SUBJECT),
    benchmark:
        layout.benchmark("prepare_model", layout.MODEL_SUBJECT)
    resources:
        gpu=0,
        llem_host=1,
        mem_mb=16000,
        runtime=120,
    shell:
        "python -m llem prepare-model --spec {input.spec:q}"
        " --models-dir {params.models_dir:q} > {log:q} 2>&1"

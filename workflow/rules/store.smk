# Ingest a campaign run's results into the store. This local rule is the only writer of the
# store; its output is a receipt, never the store (Snakemake deletes outputs before a re-run).


localrules:
    ingest,


rule ingest:
    input:
        results=get_campaign_results,
    output:
        receipt=layout.RECEIPT,
    params:
        store=get_store,
    log:
        layout.log("ingest", layout.RUN_SUBJECT),
    benchmark:
        layout.benchmark("ingest", layout.RUN_SUBJECT)
    resources:
        gpu=0,
        llem_host=1,
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m llem ingest --store {params.store:q} --receipt {output.receipt:q}"
        " {input.results:q} > {log:q} 2>&1"

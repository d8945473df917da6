# Tables and plots of a campaign run, collected by `snakemake --report report.html`.


localrules:
    report,


rule report:
    input:
        results=get_campaign_results,
        receipt="results/{campaign}/{run_id}/ingest.json",
    output:
        table=report(
            "results/{campaign}/{run_id}/report/experiments.html",
            caption="../report/table.rst",
            category="Summary",
        ),
        table_csv="results/{campaign}/{run_id}/report/experiments.csv",
        performance=report(
            "results/{campaign}/{run_id}/report/throughput_latency_vs_batch_size.png",
            caption="../report/performance.rst",
            category="Performance",
        ),
        energy_per_token=report(
            "results/{campaign}/{run_id}/report/energy_per_token_vs_batch_size.png",
            caption="../report/energy_per_token.rst",
            category="Efficiency",
        ),
        tradeoff=report(
            "results/{campaign}/{run_id}/report/energy_vs_throughput.png",
            caption="../report/tradeoff.rst",
            category="Efficiency",
        ),
        timeseries=report(
            directory("results/{campaign}/{run_id}/report/timeseries"),
            patterns=["{name}.png"],
            caption="../report/timeseries.rst",
            category="Power and temperature",
        ),
    log:
        "logs/report/{campaign}/{run_id}.log",
    benchmark:
        "benchmarks/report/{campaign}/{run_id}.tsv"
    resources:
        gpu=0,
        llem_host=1,
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m llem report --table {output.table:q} --csv {output.table_csv:q}"
        " --performance-plot {output.performance:q}"
        " --energy-per-token-plot {output.energy_per_token:q}"
        " --tradeoff-plot {output.tradeoff:q} --timeseries-dir {output.timeseries:q}"
        " {input.results:q} > {log:q} 2>&1"

# Tables and plots of a campaign run, collected by `snakemake --report report.html`.


localrules:
    report,


rule report:
    input:
        results=get_campaign_results,
        receipt=rules.ingest.output.receipt,
    output:
        table=report(
            layout.REPORT_TABLE,
            caption="../report/table.rst",
            category="Summary",
        ),
        table_csv=layout.REPORT_TABLE_CSV,
        performance=report(
            layout.REPORT_PERFORMANCE_PLOT,
            caption="../report/performance.rst",
            category="Performance",
        ),
        energy_per_token=report(
            layout.REPORT_ENERGY_PER_TOKEN_PLOT,
            caption="../report/energy_per_token.rst",
            category="Efficiency",
        ),
        tradeoff=report(
            layout.REPORT_TRADEOFF_PLOT,
            caption="../report/tradeoff.rst",
            category="Efficiency",
        ),
        timeseries=report(
            directory(layout.REPORT_TIMESERIES),
            patterns=["{name}.png"],
            caption="../report/timeseries.rst",
            category="Power and temperature",
        ),
    log:
        layout.log("report", layout.RUN_SUBJECT),
    benchmark:
        layout.benchmark("report", layout.RUN_SUBJECT)
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

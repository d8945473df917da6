# The summary a finished run ends with (llem.summary): one line per experiment, the report,
# the store and the next command; the same text `llem run` and `llem summary` print.
from llem import summary as llem_summary


onsuccess:
    llem_summary.print_workflow_summary(PLAN, workflow.configfiles)

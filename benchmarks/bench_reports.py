"""Time report rendering: CPU seconds per plot and for a whole report (sample input, every plot kind).

Run: .venv/bin/python benchmarks/bench_reports.py   (speed lives here, not in unit tests)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from circuitspec.reports import write_reports
from circuitspec.reports.plotdata import claim_plots
from circuitspec.reports.plots import render_plot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the sample input is test data (tests/)
from tests.helpers.report_sample import sample_report_input


def main() -> None:
    report_input = sample_report_input()
    plots = [
        plot
        for o in report_input.outcomes
        for plot in claim_plots(
            o, report_input.measurements[o.claim_id], report_input.claims[o.claim_id].targets, o.expectation
        )
    ]
    render_plot(plots[0])  # the first call loads fonts
    cpu = []
    for plot in plots:
        started = time.process_time()  # CPU time: other jobs on the machine don't count
        render_plot(plot)
        cpu.append(time.process_time() - started)
    print(
        f"{len(plots)} plots: median {statistics.median(cpu):.3f} s CPU, "
        f"max {max(cpu):.3f} s, total {sum(cpu):.2f} s"
    )
    with tempfile.TemporaryDirectory() as out:
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        write_reports(report_input, out)
        print(
            f"write_reports ({len(report_input.outcomes)} claims): "
            f"{time.perf_counter() - started_wall:.2f} s wall, {time.process_time() - started_cpu:.2f} s CPU"
        )


if __name__ == "__main__":
    main()

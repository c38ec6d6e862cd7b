"""`cloud-sync retrain`: retrain every model from the lake, chain-wide and per store, on
Dask; gate each candidate against the released champion; sign what passes.

    config.py    where the lake is, the holdout and the thresholds (small, picklable)
    holdout.py   the time split: history before the cutoff, each shopper's next weeks after
    evaluate.py  a set of models scored on held-out shoppers (next basket, purchase timing)
    gate.py      candidate against champion: paired bootstrap, verdict and reason
    tasks.py     the Dask task: one scope (a store, or the chain) read, trained, evaluated
    run.py       the pass: champion, fan-out, bundles, upload, report
    commands.py  the command line
    synthetic.py generated lake history for the tests and the benchmark
"""

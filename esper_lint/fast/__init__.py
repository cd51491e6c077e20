"""The speed machinery. Everything here may only ever err towards doing more work: the forced
analysis (`engine.analyse_source(..., force=True)`) is the oracle it is tested against, and the
rule logic in `analysis/` never knows it exists.

`precheck.py` skips files whose bytes cannot hold a private reference; `reduction.py` cuts a file
down to the statements that can matter before libcst parses it; `positions.py` places findings
without generating the whole module; `big_stack.py` keeps one big-stack thread for libcst;
`memory.py` hands freed memory back after large files.
"""

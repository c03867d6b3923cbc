"""The suite's hang guards: how long a test waits for a command before calling it hung.

Sized for a loaded 2-core machine, well above the longest run seen there (a search of the
suite takes 1-5 minutes while other jobs share the cores), and never a speed claim: a run that
is merely slow must not fail. pytest-timeout's per-test limit (pyproject.toml) sits above the
longest wait of one test, module fixtures included (a sweep killed and resumed: two commands).
"""

HANG_GUARD_S = 900  # one `vaetune search/sweep/report/train` command, or one wait inside it
SERVER_S = 300  # a server answering its first request (MLflow's starts in up to a minute)

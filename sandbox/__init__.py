"""The embedded reference target: a real PostgreSQL, the systems' HTTP apps and named faults.

`python -m sandbox up` starts it, `python -m sandbox faults` lists what can be broken on purpose.
The checks do not know they run against it: it only looks like production through the same env
variables a real target sets.
"""

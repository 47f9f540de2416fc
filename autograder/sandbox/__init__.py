"""The far side of the trust boundary: where student code runs, and how it is held there.

confine.py decides the confinement (bubblewrap namespaces, a uid of its own, rlimits) and starts a cold
student process; warm.py keeps warm templates (numpy and torch imported once) that fork one student
process per submission; inside/ holds the only files that run inside the sandbox.
"""

"""`make bench`: how close training and prediction come to what this machine can do, measured side by side.

Every measurement runs in a fresh Python process (no warm caches, no leftover threads), variants run in
alternated order with several repeats, and each figure is reported next to the figure it is compared with,
because absolute times on a shared 2-core machine drift from run to run. Run `python -m benchmarks --help`.
"""

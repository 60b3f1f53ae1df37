"""The layers of harness, bottom first: a package may import its own modules and those of lower
layers, never a higher layer's, and packages sharing a layer do not import each other.

``tests/test_layers.py`` reads :data:`LAYERS` and fails on an import (at module level or inside a
function) that breaks this order; ``docs/design.md`` explains each layer.
"""

#: bottom first; each entry names top-level modules or sub-packages of ``harness``
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_layers", "errors"),  # foundation: errors
    ("threads", "enums"),  # the thread policy; strings to enums, the unknown-thing policy
    ("fingerprint", "plotting"),  # environment, figures
    ("runs",),  # run directories and the catalogue of their files
    ("executors",),  # independent jobs in this process or on a Dask cluster
    ("kernels", "metrics", "introspect"),  # instrumented kernels, measures, spectra
    ("perturb",),  # the stochastic-arithmetic engine and seeds
    ("data",),  # cohorts, atlas, synthetic subjects
    ("models",),  # FastSurferCNN, loss, view aggregation
    ("train",),  # one training run
    ("ensemble", "brainage"),  # ensembles of runs; brain age from their volumes
    ("classical", "segment"),  # atlas-registration pipeline; inference on users' scans
    ("store",),  # the results database over run directories
    ("compare", "report", "containers"),  # comparisons, gates, reports; container images
    ("experiments",),  # studies and the demo, built from everything below
    ("commands",),  # one CLI module per command
    ("cli",),  # the command line
    ("__main__",),  # python -m harness
)

"""Pipelines that RetrainJobs run: the compiled packages shipped with the operator.

``pipelines/<name>/pipeline.py`` (outside the package) defines pipeline ``<name>``;
:mod:`.compile` turns it into its one compiled package, ``packages/<name>.yaml`` (package
data), which :mod:`.catalog` finds at run time. :mod:`.local_worker` runs a
compiled package with kfp's local runner in a process of its own (the ``local`` backend).
"""

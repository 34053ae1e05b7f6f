"""Past one process, on Ray: actors feeding one learner (``learner``, ``actors``), sweeps run as
Ray tasks (``sweep``) and store labelling spread over actors (``labelling``). ``session`` starts
or joins the Ray instance they share and holds the ``ray:`` settings."""

"""Past one process, on Ray: env actors feeding one learner (``actors``, ``learner``), DAgger
rollouts on actors (``dagger``) and sweeps run as Ray tasks (``sweep``); ``session`` starts or
joins the Ray instance they share and holds the ``ray:`` settings. Scoring a store over actors
lives with the rest of labelling, in ``reward_models.labeling.score_on_ray``."""

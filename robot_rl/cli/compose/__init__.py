"""The composition root: a verb's composed config -> env, agent, reward, data, logger, devices -> the run.

Every verb builds what it runs through here, so a verb file only reads its arguments:
env (the training env factories), training + loops (train), evaluation (eval, and the pipeline's
report), recording (record), render (sim render). The agent and reward builders themselves live
with what they build (robot_rl.train.build.build_agent, robot_rl.train.rewards.build_reward).
(Not named ``build``: the repository's .gitignore ignores every ``build/`` folder.)
"""

"""Reinforcement- and imitation-learning algorithms: SAC (+ DrQ for pixels), IQL, BC, and their networks."""

"""Reinforcement-learning helpers (assignment a7_dqn): greedy evaluation of a Q-function on gymnasium.

    returns = evaluate_greedy(q_net, seeds=range(10))   # one CartPole-v1 episode per seed
    returns.mean()

The episodes run side by side: the Q-function is called once per time step with the observations of
every episode still running, so evaluating a Q-network that lives in another process (the grader's case)
costs one call per step, not one per step and episode. The greedy action (the argmax) is taken here,
by the caller's code, from the Q-values the function returns.
"""

import numpy as np

from course_utils.checks import assert_shape, to_numpy


def evaluate_greedy(q_function, seeds, env_id="CartPole-v1"):
    """Undiscounted return of the greedy policy a = argmax_a q_function(obs)[a], one episode per seed.

    q_function: callable mapping a float32 tensor (B, obs_dim) of observations to Q-values (B, n_actions),
        e.g. a torch module; B is the number of episodes still running.
    seeds: the seed of each episode's environment reset.
    Returns a float64 array with one return per seed.
    """
    import gymnasium as gym
    import torch

    seeds = [int(seed) for seed in seeds]
    envs = [gym.make(env_id) for _ in seeds]
    obs = np.stack([env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]).astype(np.float32)
    n_actions = envs[0].action_space.n
    returns = np.zeros(len(seeds))
    running = np.ones(len(seeds), dtype=bool)
    while running.any():
        idx = np.flatnonzero(running)
        with torch.no_grad():
            q_values = q_function(torch.from_numpy(obs[idx]))
        assert_shape(f"Q-values for {len(idx)} observations", q_values, (len(idx), n_actions))
        actions = to_numpy(q_values).astype(np.float64).argmax(axis=1)
        for i, action in zip(idx, actions, strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(int(action))
            returns[i] += reward
            running[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    return returns

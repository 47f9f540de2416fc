"""Reinforcement-learning helpers (assignment a7_dqn): CartPole and its relabelled variants, and greedy
evaluation of a Q-function on them.

    env = make_cartpole()                          # gymnasium's CartPole-v1
    env = make_cartpole(variant=7)                 # the same task with relabelled observations and actions
    returns = evaluate_greedy(q_net, seeds=range(10), variant=7)   # one episode per seed
    returns.mean()

A variant permutes the four observation entries, flips their signs and rescales them (factors between
1/2 and 2), and permutes the actions, all drawn from np.random.default_rng(variant). The physics and the
rewards are unchanged, so a learning algorithm solves every variant equally well, while a rule written
for CartPole's own observation layout ("push towards the side the pole leans to") does not carry over.

The episodes of evaluate_greedy run side by side: the Q-function is called once per time step with the
observations of every episode still running, so evaluating a Q-network that lives in another process
(the grader's case) costs one call per step, not one per step and episode. The greedy action (the argmax)
is taken here, by the caller's code, from the Q-values the function returns.
"""

import gymnasium as gym
import numpy as np

from course_utils.checks import assert_shape, to_numpy


class RelabelledEnv(gym.Wrapper):
    """An environment whose observations are obs[perm] * scale and whose action a is the inner action_perm[a]."""

    def __init__(self, env, variant):
        super().__init__(env)
        rng = np.random.default_rng(variant)
        obs_dim, n_actions = env.observation_space.shape[0], int(env.action_space.n)
        self.perm = rng.permutation(obs_dim)  # observation entry i is the inner entry perm[i] ...
        self.scale = rng.choice([-1.0, 1.0], obs_dim) * np.exp(rng.uniform(-np.log(2), np.log(2), obs_dim))
        self.action_perm = rng.permutation(n_actions)  # ... and action a is the inner action action_perm[a]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)

    def relabel(self, obs):
        return (obs[self.perm] * self.scale).astype(np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self.relabel(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(int(self.action_perm[int(action)]))
        return self.relabel(obs), reward, terminated, truncated, info


def make_cartpole(variant=None):
    """CartPole-v1; with an integer variant, the relabelled copy of it that variant draws (see above)."""
    env = gym.make("CartPole-v1")
    return env if variant is None else RelabelledEnv(env, int(variant))


def evaluate_greedy(q_function, seeds, variant=None):
    """Undiscounted return of the greedy policy a = argmax_a q_function(obs)[a], one episode per seed.

    q_function: callable mapping a float32 tensor (B, obs_dim) of observations to Q-values (B, n_actions),
        e.g. a torch module; B is the number of episodes still running.
    seeds: the seed of each episode's environment reset.
    variant: which environment, as in make_cartpole (None: CartPole-v1 itself).
    Returns a float64 array with one return per seed.
    """
    import torch

    seeds = [int(seed) for seed in seeds]
    envs = [make_cartpole(variant) for _ in seeds]
    obs = np.stack([env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]).astype(np.float32)
    n_actions = int(envs[0].action_space.n)
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

"""Judge-side quality check for generated 8x8 digits (assignment a6_gan). Nothing here downloads anything.

    images, labels = load_digit_images()          # the real digits, (1797, 1, 8, 8) float32 in [-1, 1]
    quality = sample_quality(samples)             # samples: (N, 1, 8, 8) or (N, 64), values in [-1, 1]
    quality["confidence"], quality["class_fractions"]

A small classifier is trained on the real digits, once per process (about a second on one CPU core),
and reads two numbers off its predictions for the samples:
- confidence: the mean over samples of the classifier's top class probability. The classifier is also
  taught to be unsure (uniform prediction) on images that are not digits: uniform noise, digits with
  shuffled pixels, and half-and-half blends of two different digits. Blurry, noisy or in-between
  samples therefore score low, clean digits high (real digits score about 0.87);
- class_fractions: the fraction of samples assigned to each of the 10 classes. A generator that has
  collapsed onto a few modes leaves some classes (nearly) empty.

The classifier's seed is a parameter: the grader's hidden tests use a seed students never see, so a
generator cannot be tuned against the exact classifier that grades it.

    distances = nearest_real_distance(samples)   # (N,): each sample's L2 distance to its closest real digit

A generator that replays training images (copies, or copies with a little noise) scores high confidence
without having learnt anything; its samples sit at distance (nearly) 0 from a real digit. Real digits
sit at about 2 from their nearest other real digit (median; 1.5 for the closest tenth).
"""

import numpy as np

_CLASSIFIERS = {}  # seed -> classifier, trained on first use, then reused by every call in this process


def load_digit_images():
    """sklearn's 1797 handwritten digits as images for a GAN: pixels 0..16 mapped linearly to [-1, 1].

    The same images as course_utils.load_digits, without its split and centring.
    Returns images (1797, 1, 8, 8) float32 and labels (1797,) int64.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images / 8.0 - 1.0).astype(np.float32)  # (1797, 8, 8), 0..16 -> [-1, 1]
    return images[:, None, :, :], digits.target.astype(np.int64)


def _not_digits(X, y, rng, n):
    """Images that are not digits: blends of two different digits, shuffled pixels, uniform noise."""
    a, b = rng.integers(0, len(X), n), rng.integers(0, len(X), n)
    different = y[a] != y[b]
    blends = 0.5 * (X[a] + X[b])[different]
    shuffled = np.take_along_axis(X[rng.integers(0, len(X), n)], rng.random((n, 64)).argsort(axis=1), axis=1)
    noise = rng.uniform(-1, 1, (n, 64))
    return np.concatenate([blends, shuffled, noise]).astype(np.float32)


def _train_classifier(seed=0, steps=300, batch_size=128):
    """MLP 64 -> 128 -> 10: cross-entropy on real digits plus a uniform target on non-digits."""
    import torch
    import torch.nn.functional as F

    images, labels = load_digit_images()
    X = images.reshape(len(images), 64)
    junk = torch.from_numpy(_not_digits(X, labels, np.random.default_rng(seed), 1500))
    X, y = torch.from_numpy(X), torch.from_numpy(labels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small: more threads only add overhead, much more on a busy machine
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():  # leave the caller's random state alone
            torch.manual_seed(seed)
            net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
            optimizer = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
            for _ in range(steps):
                i = torch.randint(0, len(X), (batch_size,))
                j = torch.randint(0, len(junk), (batch_size,))
                digits_loss = F.cross_entropy(net(X[i]), y[i])
                unsure_loss = -F.log_softmax(net(junk[j]), dim=1).mean()  # cross-entropy to the uniform distribution
                optimizer.zero_grad()
                (digits_loss + unsure_loss).backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def digit_classifier(seed=0):
    """The judge's classifier (a torch module, 64 pixels -> 10 logits), trained once per process and seed."""
    if seed not in _CLASSIFIERS:
        _CLASSIFIERS[seed] = _train_classifier(seed)
    return _CLASSIFIERS[seed]


def sample_quality(samples, seed=0):
    """Confidence and class coverage of generated digits, judged by digit_classifier(seed).

    samples: array or tensor of N images, (N, 1, 8, 8) or (N, 64), values in [-1, 1].
    Returns {"confidence": mean top probability (float), "class_fractions": (10,) float64 array,
    "predicted": (N,) int64 array of predicted classes}.
    """
    import torch

    classifier = digit_classifier(seed)
    X = torch.as_tensor(np.asarray(samples, dtype=np.float32).reshape(len(samples), 64))
    with torch.no_grad():
        probs = torch.softmax(classifier(X), dim=1).double().numpy()  # (N, 10)
    predicted = probs.argmax(axis=1)
    return {
        "confidence": float(probs.max(axis=1).mean()),
        "class_fractions": np.bincount(predicted, minlength=10) / len(predicted),
        "predicted": predicted.astype(np.int64),
    }


def nearest_real_distance(samples):
    """Each sample's Euclidean distance to its nearest real digit (all 1797 images), as an (N,) float64 array.

    samples: array or tensor of N images, (N, 1, 8, 8) or (N, 64), values in [-1, 1].
    """
    images, _ = load_digit_images()
    real = images.reshape(len(images), 64).astype(np.float64)  # (R, 64)
    X = np.asarray(samples, dtype=np.float64).reshape(len(samples), 64)  # (N, 64)
    squared = (X**2).sum(axis=1)[:, None] - 2 * X @ real.T + (real**2).sum(axis=1)[None, :]  # (N, R)
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))

"""Synthetic submission: assignment 8, the reference solution."""
import numpy as np

def val_far(distances, same, threshold):
    """Validation rate and false accept rate at one threshold (accept when distance <= threshold)."""
    accepted = distances <= threshold
    return float(np.mean(accepted[same])), float(np.mean(accepted[~same]))


def val_at_far(distances, same, far=1e-3):
    """VAL at the largest threshold whose FAR is at most ``far``.

    Returns
    -------
    val, achieved_far : float
    threshold : float, -inf when even the smallest distance gives FAR > far
    """
    best = (0.0, 0.0, -np.inf)
    for t in np.unique(distances):                 # ascending
        val, achieved = val_far(distances, same, t)
        if achieved > far + 1e-12:                 # FAR only grows from here
            break
        best = (val, achieved, float(t))
    return best


def fit_threshold(distances, same):
    """Threshold with the best accuracy on these pairs, and that accuracy."""
    u = np.unique(distances)
    candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    accuracies = [np.mean((distances <= t) == same) for t in candidates]
    k = int(np.argmax(accuracies))                 # argmax returns the first (smallest) of the best
    return float(candidates[k]), float(accuracies[k])


def kfold_accuracy(distances, same, *, folds):
    """Accuracy of each held-out fold with the threshold fitted on the others.

    Returns
    -------
    accuracies, thresholds : float arrays, shape (n_folds,)
    """
    accuracies, thresholds = [], []
    for k in np.unique(folds):
        test = folds == k
        t, _ = fit_threshold(distances[~test], same[~test])
        thresholds.append(t)
        accuracies.append(np.mean((distances[test] <= t) == same[test]))
    return np.asarray(accuracies), np.asarray(thresholds)

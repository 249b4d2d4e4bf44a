"""Deterministic generator of the trust seed's 6,000 freelancer profiles.

What makes a profile trustworthy here: a latent credibility score that rewards a track
record that could really have happened and can be checked, and a description that reads
like someone who did the work:

- a plausible timeline: the months claimed (num_projects x avg_project_duration) fit into
  total_years, allowing for the projects the freelancer says overlapped;
- few overlapping projects (overlap_count), consistent technology across projects
  (tech_consistency) and many projects with a verifiable link (project_link_ratio);
- a specific description: concrete, domain-consistent text versus generic boilerplate.
  Specificity is a latent trait that only the text embedding carries, so a model that
  ignores the text, or the indicators, tops out well below one that reads both.

The top 51.2% of profiles by (credibility + noise) are labelled trustworthy, giving the
seed's 51.2% / 48.8% class balance exactly; the noise makes some labels unrecoverable, as
real labels are.

Embeddings mimic sentence-transformer output: unit-norm 768-d vectors made of a topic
direction (what the freelancer does), a specificity direction scaled by the latent trait,
a generic-boilerplate direction scaled by its opposite, and isotropic noise. As in the
seed, the model sees step 0 = embedding, step 1 = the six indicators zero-padded to 768,
standardised with a scaler fitted on the training split only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.splits import StandardScaler, split_indices

EMBED_DIM = 768
INDICATORS = (
    "num_projects",
    "total_years",
    "avg_project_duration",
    "overlap_count",
    "tech_consistency",
    "project_link_ratio",
)
NUM_TOPICS = 12


@dataclasses.dataclass(frozen=True)
class TrustProfiles:
    embeddings: np.ndarray  # (N, 768) float32, unit norm
    indicators: np.ndarray  # (N, 6) float32, raw units, columns as INDICATORS
    labels: np.ndarray  # (N,) int32, 1 = trustworthy


def _zscore(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / v.std()


def generate_profiles(
    n: int = 6000, *, seed: int = 0, positive_rate: float = 0.512, label_noise: float = 0.25
) -> TrustProfiles:
    rng = np.random.default_rng(seed)
    num_projects = np.clip(np.round(rng.lognormal(2.2, 0.8, n)), 1, 50)
    total_years = rng.uniform(0.5, 15.0, n)
    avg_duration = np.clip(rng.lognormal(1.3, 0.8, n), 0.3, 24.0)  # months
    overlap_count = np.minimum(rng.poisson(rng.gamma(1.5, 2.5, n)), 19).astype(float)
    overlap_count = np.minimum(overlap_count, num_projects - 1)
    tech_consistency = 0.1 + 0.9 * rng.beta(2.5, 2.0, n)
    link_ratio = np.clip(rng.beta(1.2, 1.5, n), 0.001, 1.0)
    specificity = rng.standard_normal(n)  # latent, seen only through the text

    # Months claimed per month available; overlapping projects legitimately share time.
    busy = num_projects * avg_duration / (12.0 * total_years * (1.0 + 0.5 * overlap_count))
    credibility = (
        -1.0 * _zscore(np.log(busy))
        - 0.8 * _zscore(overlap_count)
        + 0.9 * _zscore(tech_consistency)
        + 0.9 * _zscore(link_ratio)
        + 1.3 * specificity
    )
    noisy = credibility / credibility.std() + label_noise * rng.standard_normal(n)
    labels = np.zeros(n, np.int32)
    labels[np.argsort(-noisy)[: int(round(positive_rate * n))]] = 1

    basis = np.linalg.qr(rng.standard_normal((EMBED_DIM, NUM_TOPICS + 2)))[0].T  # orthonormal
    topics, specific_dir, generic_dir = basis[:NUM_TOPICS], basis[-2], basis[-1]
    topic = rng.integers(0, NUM_TOPICS, n)
    emb = (
        1.0 * topics[topic]
        + 0.35 * specificity[:, None] * specific_dir
        - 0.25 * specificity[:, None] * generic_dir
        + rng.standard_normal((n, EMBED_DIM)) * (0.6 / np.sqrt(EMBED_DIM))
    )  # (N, 768)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    indicators = np.stack(
        [num_projects, total_years, avg_duration, overlap_count, tech_consistency, link_ratio],
        axis=1,
    )  # (N, 6)
    return TrustProfiles(emb.astype(np.float32), indicators.astype(np.float32), labels)


def to_sequences(profiles: TrustProfiles, scaler: StandardScaler) -> SequenceDataset:
    """(N, 2, 768) sequences: step 0 the embedding, step 1 the scaled indicators + zeros."""
    n = len(profiles.labels)
    flat = np.concatenate([profiles.embeddings, profiles.indicators], axis=1)  # (N, 774)
    scaled = scaler.transform(flat)
    inputs = np.zeros((n, 2, EMBED_DIM), np.float32)
    inputs[:, 0] = scaled[:, :EMBED_DIM]
    inputs[:, 1, : len(INDICATORS)] = scaled[:, EMBED_DIM:]
    return SequenceDataset(inputs, np.full(n, 2, np.int32), profiles.labels.astype(np.float32))


def _take(p: TrustProfiles, idx: np.ndarray) -> TrustProfiles:
    return TrustProfiles(p.embeddings[idx], p.indicators[idx], p.labels[idx])


def trust_splits(
    n: int = 6000, *, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> dict[str, SequenceDataset]:
    """Train / val / test datasets; the scaler sees the training split only."""
    profiles = generate_profiles(n, seed=seed)
    parts = [_take(profiles, idx) for idx in split_indices(n, fractions, seed=seed + 1)]
    train = parts[0]
    scaler = StandardScaler.fit(np.concatenate([train.embeddings, train.indicators], axis=1))
    return {
        name: to_sequences(p, scaler)
        for name, p in zip(("train", "val", "test"), parts, strict=True)
    }

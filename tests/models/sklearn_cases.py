"""scikit-learn models converted by skl2onnx (issue 10, the ai.onnx.ml part):
tree ensembles (random forests, gradient boosting; classifiers and
regressors) and a preprocessing pipeline (StandardScaler + OneHotEncoder +
LogisticRegression), trained on small random data at test time so nothing
binary is committed. Same Case format as wild_cases.py; check_wild.py runs
them with `--cases sklearn` against onnxruntime in reference and engine mode.
ZipMap is disabled in the export ({'zipmap': False}): Kiln runs tensors only
and refuses the map it writes with a message saying so.
"""
import numpy as np
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from wild_cases import Case

CASES = {}
N_FEAT = 6


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def data(seed, n=200, classes=3):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, N_FEAT)).astype(np.float32)
    s = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - x[:, 3]
    y_cls = np.digitize(s, np.quantile(s, np.linspace(0, 1, classes + 1)[1:-1]))
    y_reg = np.stack([s, x[:, 4] - x[:, 5] ** 2], 1).astype(np.float32)
    # inputs the models never saw, of an odd batch size
    xt = r.normal(size=(37, N_FEAT)).astype(np.float32)
    return x, y_cls, y_reg, xt


def convert(model, x, xt, **kw):
    onx = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, **kw)
    name = onx.graph.input[0].name
    return Case(onx, {name: xt}, dynamic={name: [0]})


NO_ZIPMAP = {"options": {"zipmap": False}}


@case
def skl_random_forest_classifier():
    x, y, _, xt = data(1)
    m = RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(x, y)
    return convert(m, x, xt, **NO_ZIPMAP)


@case
def skl_random_forest_regressor():
    x, _, y, xt = data(2)
    m = RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0).fit(x, y)
    return convert(m, x, xt)


@case
def skl_gradient_boosting_classifier_binary():
    x, y, _, xt = data(3, classes=2)
    m = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0).fit(x, y)
    return convert(m, x, xt, **NO_ZIPMAP)


@case
def skl_gradient_boosting_classifier_multiclass():
    x, y, _, xt = data(4)
    m = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0).fit(x, y)
    return convert(m, x, xt, **NO_ZIPMAP)


@case
def skl_gradient_boosting_regressor():
    x, _, y, xt = data(5)
    m = GradientBoostingRegressor(n_estimators=12, max_depth=3, random_state=0).fit(x, y[:, 0])
    return convert(m, x, xt)


@case
def skl_pipeline_scaler_onehot_logreg():
    """StandardScaler on the numeric columns, OneHotEncoder on two integer
    category columns (carried as floats in one input), then a 3-class
    LogisticRegression."""
    x, y, _, xt = data(6)
    r = np.random.default_rng(7)
    cat = r.integers(0, 4, size=(len(x), 2)).astype(np.float32)
    cat_t = r.integers(0, 5, size=(len(xt), 2)).astype(np.float32)  # 4: unseen
    y = (y + cat[:, 0].astype(np.int64)) % 3
    pipe = Pipeline([("pre", ColumnTransformer([
        ("num", StandardScaler(), list(range(N_FEAT))),
        ("cat", OneHotEncoder(handle_unknown="ignore"), [N_FEAT, N_FEAT + 1])])),
        ("lr", LogisticRegression(max_iter=500))])
    xa = np.concatenate([x, cat], 1)
    pipe.fit(xa, y)
    return convert(pipe, xa, np.concatenate([xt, cat_t], 1), **NO_ZIPMAP)


@case
def skl_logistic_regression_binary():
    """One coefficient row (LinearClassifier's binary form)."""
    x, y, _, xt = data(8, classes=2)
    m = Pipeline([("sc", StandardScaler()), ("lr", LogisticRegression())]).fit(x, y)
    return convert(m, x, xt, **NO_ZIPMAP)


@case
def skl_random_forest_classifier_binary():
    x, y, _, xt = data(9, classes=2)
    m = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(x, y)
    return convert(m, x, xt, **NO_ZIPMAP)

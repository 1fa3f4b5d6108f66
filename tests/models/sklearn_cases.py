"""scikit-learn models converted by skl2onnx (issue 10, the ai.onnx.ml part):
tree ensembles (random forests, gradient boosting; classifiers and
regressors), support vector machines (SVC / NuSVC with every kernel, with
and without probabilities, binary and multiclass; SVR, NuSVR, OneClassSVM;
plus SVMClassifier/SVMRegressor written by hand in liblinear mode and with
each post_transform, which skl2onnx never writes) and a preprocessing pipeline (StandardScaler + OneHotEncoder +
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
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM
import onnx
from onnx import TensorProto, helper

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


def svm_data(seed, classes):
    """Standardized features (SVMs are scale-sensitive); a smaller train set
    keeps the support-vector count, and the test's size, modest."""
    x, y, y_reg, xt = data(seed, n=120, classes=classes)
    return x, y, y_reg, xt


@case
def skl_svc_rbf_multiclass():
    x, y, _, xt = svm_data(20, 3)
    return convert(SVC().fit(x, y), x, xt, **NO_ZIPMAP)


@case
def skl_svc_rbf_binary():
    x, y, _, xt = svm_data(21, 2)
    return convert(SVC().fit(x, y), x, xt, **NO_ZIPMAP)


@case
def skl_svc_probability_multiclass():
    x, y, _, xt = svm_data(22, 4)
    return convert(SVC(probability=True, random_state=0).fit(x, y), x, xt, **NO_ZIPMAP)


@case
def skl_svc_probability_binary():
    x, y, _, xt = svm_data(23, 2)
    return convert(SVC(probability=True, random_state=0).fit(x, y), x, xt, **NO_ZIPMAP)


@case
def skl_svc_poly_kernel():
    """poly kernel of degree 3 with coef0 and gamma set."""
    x, y, _, xt = svm_data(24, 3)
    return convert(SVC(kernel="poly", degree=3, coef0=0.5, gamma=0.3).fit(x, y), x, xt,
                   **NO_ZIPMAP)


@case
def skl_svc_linear_kernel():
    x, y, _, xt = svm_data(25, 3)
    return convert(SVC(kernel="linear").fit(x, y), x, xt, **NO_ZIPMAP)


@case
def skl_svc_sigmoid_kernel():
    x, y, _, xt = svm_data(26, 3)
    return convert(SVC(kernel="sigmoid", gamma=0.05).fit(x, y), x, xt, **NO_ZIPMAP)


@case
def skl_nusvc():
    x, y, _, xt = svm_data(27, 3)
    return convert(NuSVC(nu=0.3).fit(x, y), x, xt, **NO_ZIPMAP)


@case
def skl_svr():
    x, _, y, xt = svm_data(28, 3)
    return convert(SVR(C=2.0).fit(x, y[:, 0]), x, xt)


@case
def skl_nusvr_poly():
    x, _, y, xt = svm_data(29, 3)
    return convert(NuSVR(kernel="poly", degree=2).fit(x, y[:, 1]), x, xt)


@case
def skl_one_class_svm():
    x, _, _, xt = svm_data(30, 3)
    return convert(OneClassSVM(nu=0.2).fit(x), x, xt * 1.5)


def _svm_node_case(op, attrs, n_out_cols, seed):
    r = np.random.default_rng(seed)
    xt = r.normal(size=(37, N_FEAT)).astype(np.float32)
    outs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])]
    if op == "SVMClassifier":
        outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, n_out_cols])]
    node = helper.make_node(op, ["X"], [o.name for o in outs], domain="ai.onnx.ml", **attrs)
    g = helper.make_graph([node], op, [helper.make_tensor_value_info(
        "X", TensorProto.FLOAT, [None, N_FEAT])], outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    return Case(m, {"X": xt}, dynamic={"X": [0]})


@case
def svm_classifier_liblinear_softmax():
    """No support vectors: one coefficient row per class, SOFTMAX scores."""
    r = np.random.default_rng(31)
    return _svm_node_case("SVMClassifier", dict(
        classlabels_ints=[3, 5, 7], coefficients=r.normal(size=3 * N_FEAT).tolist(),
        rho=[0.25], kernel_type="LINEAR", kernel_params=[0.0, 0.0, 0.0],
        post_transform="SOFTMAX"), 3, 32)


@case
def svm_classifier_binary_logistic():
    """Support vectors, two classes, LOGISTIC over [-s, s]."""
    r = np.random.default_rng(33)
    nv = [4, 3]
    return _svm_node_case("SVMClassifier", dict(
        classlabels_ints=[0, 1], vectors_per_class=nv,
        support_vectors=r.normal(size=sum(nv) * N_FEAT).tolist(),
        coefficients=r.normal(size=sum(nv)).tolist(), rho=[0.1],
        kernel_type="RBF", kernel_params=[0.2, 0.0, 3.0], post_transform="LOGISTIC"), 2, 34)


@case
def svm_regressor_liblinear():
    r = np.random.default_rng(35)
    return _svm_node_case("SVMRegressor", dict(
        coefficients=r.normal(size=N_FEAT).tolist(), rho=[-0.5], n_supports=0,
        kernel_type="LINEAR", kernel_params=[0.0, 0.0, 0.0]), 1, 36)

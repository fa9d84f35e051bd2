"""Train the fraud model: an XGBoost classifier (its scikit-learn API) behind a scikit-learn
pipeline, saved with skops.

Contract: read $MLOPS_TRAIN_PATH, write $MLOPS_MODEL_PATH; hyper-parameters come from params.yaml
(shown base vs head in the PR comment).
"""

import os

import pandas as pd
import skops.io as sio
import xgboost
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

NUMERIC = ["amount", "hour", "account_age_days", "distance_km", "foreign"]
CATEGORICAL = ["channel"]


def main():
    with open("params.yaml", encoding="utf-8") as handle:
        params = yaml.safe_load(handle)["train"]
    frame = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
    features = ColumnTransformer([
        ("numeric", "passthrough", NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    classifier = xgboost.XGBClassifier(random_state=int(os.environ.get("MLOPS_SEED", "0")), n_jobs=1,
                                       **params)
    model = Pipeline([("features", features), ("model", classifier)])
    model.fit(frame[NUMERIC + CATEGORICAL], frame["fraud"])
    sio.dump(model, os.environ["MLOPS_MODEL_PATH"])
    print(f"trained XGBoost ({params}) on {len(frame)} rows")


if __name__ == "__main__":
    main()

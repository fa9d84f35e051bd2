"""Train the credit-risk model (the team's own code; mlops-bot runs it as `python train.py`).

Contract: read the training data from $MLOPS_TRAIN_PATH, write a skops model to $MLOPS_MODEL_PATH.
"""

import os

import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

MODEL = os.environ.get("CREDIT_RISK_MODEL", "logistic_regression")  # try: shallow_tree
NUMERIC = ["age", "income", "debt_ratio", "credit_history_years", "late_payments", "loan_amount"]
CATEGORICAL = ["employment", "purpose"]  # `sex` is deliberately not a feature


def estimator(seed):
    if MODEL == "gradient_boosting":
        return GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1,
                                          random_state=seed)
    if MODEL == "shallow_tree":
        return DecisionTreeClassifier(max_depth=1, random_state=seed)
    return LogisticRegression(max_iter=1000)


def main():
    seed = int(os.environ.get("MLOPS_SEED", "0"))
    frame = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
    features = ColumnTransformer([
        ("numeric", StandardScaler(), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = Pipeline([("features", features), ("model", estimator(seed))])
    model.fit(frame[NUMERIC + CATEGORICAL], frame["default"])
    sio.dump(model, os.environ["MLOPS_MODEL_PATH"])
    print(f"trained {MODEL} on {len(frame)} rows")


if __name__ == "__main__":
    main()

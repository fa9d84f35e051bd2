"""A realistic synthetic credit-risk dataset for the demo (loan default, with a sensitive attribute).

Generated, not shipped, so it is small in the wheel and reproducible from a seed. Defaults follow a
logistic model of debt ratio, income, late payments and loan size, with non-linear terms (so tree
ensembles beat a linear model) and label noise. `sex` is the sensitive attribute; income differs by
group, so a model can be unfair without ever seeing `sex`. `shift` moves the population (higher
debt, lower income) to make data drift visible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EMPLOYMENT = ("salaried", "self_employed", "unemployed", "retired")
PURPOSE = ("car", "home", "education", "business", "debt_consolidation")
FEATURES_NUMERIC = ("age", "income", "debt_ratio", "credit_history_years", "late_payments", "loan_amount")
FEATURES_CATEGORICAL = ("employment", "purpose")
TARGET = "default"
SENSITIVE = "sex"
ID = "applicant_id"


def generate(rows: int, seed: int = 0, shift: float = 0.0, id_start: int = 1) -> pd.DataFrame:
    """`rows` applicants; `shift` in [0, 1] drifts the population towards riskier profiles."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], rows, p=[0.48, 0.52])
    age = np.clip(rng.normal(41 + 4 * shift, 12, rows), 18, 85).round().astype(int)
    employment = rng.choice(EMPLOYMENT, rows, p=[0.62, 0.16, 0.08 + 0.06 * shift, 0.14 - 0.06 * shift])
    base_income = np.where(sex == "male", 54_000, 47_000) * (1 - 0.15 * shift)
    income = rng.lognormal(np.log(base_income), 0.45)
    income = np.where(employment == "unemployed", income * 0.35, income).round(-2)
    debt_ratio = np.clip(rng.beta(2.2, 5.0, rows) + 0.12 * shift, 0, 1.5).round(3)
    history = np.clip(age - 18 - rng.integers(0, 10, rows), 0, None)
    late = rng.poisson(0.6 + 0.8 * debt_ratio + 0.4 * shift)
    purpose = rng.choice(PURPOSE, rows)
    loan = (rng.lognormal(np.log(14_000), 0.6, rows) * np.where(purpose == "home", 4.0, 1.0)).round(-2)
    z_income = (np.log(income + 1) - 10.7) / 0.5
    logit = (
        -1.6
        + 2.4 * (debt_ratio - 0.3)
        + 3.0 * np.maximum(debt_ratio - 0.55, 0)  # risk jumps past a threshold: non-linear
        - 0.7 * z_income
        + 0.55 * late
        + 0.25 * np.log(loan / 14_000)
        - 0.03 * history
        + np.select([employment == "unemployed", employment == "self_employed"], [1.1, 0.35], 0.0)
        + np.where(purpose == "business", 0.4, 0.0)
        + 0.6 * ((age < 25) & (late > 1))  # an interaction only trees find easily
    )
    default = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            ID: np.arange(id_start, id_start + rows),
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio,
            "credit_history_years": history,
            "late_payments": late,
            "loan_amount": loan,
            "employment": employment,
            "purpose": purpose,
            SENSITIVE: sex,
            TARGET: default,
        }
    )


PLAN = ("standard", "extended", "hardship")
PLAN_TARGET = "plan"


def generate_plans(rows: int, seed: int = 0, id_start: int = 1) -> pd.DataFrame:
    """Borrowers in arrears and the repayment plan collections chose for them (three classes): the
    second, multiclass model of the demo repository. Hardship follows low income and unemployment,
    extended plans high debt and many late payments; 10 % of the labels are noise."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(np.log(42_000), 0.5, rows).round(-2)
    debt_ratio = np.clip(rng.beta(2.5, 4.0, rows), 0, 1.2).round(3)
    late = rng.poisson(1.5 + 2.0 * debt_ratio)
    employment = rng.choice(EMPLOYMENT, rows, p=[0.6, 0.15, 0.15, 0.1])
    balance = (rng.lognormal(np.log(6_000), 0.7, rows)).round(-1)
    z_income = (np.log(income) - np.log(42_000)) / 0.5
    hardship = -1.2 - 1.3 * z_income + 2.0 * (employment == "unemployed") + 0.3 * (employment == "retired")
    extended = -0.8 + 3.0 * (debt_ratio - 0.4) + 0.35 * late + 0.4 * np.log(balance / 6_000)
    scores = np.column_stack([np.zeros(rows), extended, hardship])
    plan = np.asarray(PLAN)[scores.argmax(axis=1)]
    noisy = rng.random(rows) < 0.10
    plan[noisy] = rng.choice(PLAN, int(noisy.sum()))
    return pd.DataFrame(
        {
            "account_id": np.arange(id_start, id_start + rows),
            "income": income,
            "debt_ratio": debt_ratio,
            "late_payments": late,
            "balance": balance,
            "employment": employment,
            PLAN_TARGET: plan,
        }
    )

"""Publishes the iris dataset as an OCI artifact, the way the seed's was made.

scikit-learn's bundled iris (no network) is split with a fixed seed into
X_train, X_test, y_train and y_test, each written with joblib and pushed with
oras-py as a layer of type application/vnd.oci.image.layer.v1.tar titled with
its file name, under the config type application/vnd.unknown.config.v1+json.
Prints the manifest digest (computed from the bytes pushed).

  python3 trainer/publish_dataset.py registry.local:5000/ml/iris:data [--plain-http]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from ociref import TrainerError, make_registry, parse_reference, pushed_manifest_digest, run_cli

# Seed 1 leaves one hard test sample: accuracy 0.9667, so a MIN_ACCURACY gate is testable.
SPLIT_SEED = 1
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="registry/repository:tag to push to")
    p.add_argument(
        "--plain-http",
        action="store_true",
        default=os.environ.get("PLAIN_HTTP", "").lower() in ("1", "true", "yes"),
        help="plain HTTP (registry.local:5000 and loopback only)",
    )
    args = p.parse_args(argv)
    ref = parse_reference(args.reference)
    if ref.digest:
        raise TrainerError(f"{args.reference}: give a tag to push to, not a digest")
    registry = make_registry(ref, args.plain_http)

    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=SPLIT_SEED, stratify=y)
    parts = {"X_train": X_train, "X_test": X_test, "y_train": y_train, "y_test": y_test}

    with tempfile.TemporaryDirectory(prefix="dataset-") as tmp:
        names = []
        for name, array in parts.items():
            # protocol fixed so the same split always gives the same bytes and digest.
            joblib.dump(array, Path(tmp) / f"{name}.joblib", protocol=4)
            names.append(f"{name}.joblib:{LAYER_TYPE}")
        cwd = os.getcwd()
        os.chdir(tmp)  # oras only pushes files under the working directory
        try:
            # No manifest_config: oras then pushes the empty "{}" config typed
            # application/vnd.unknown.config.v1+json, as the seed's dataset has.
            response = registry.push(target=f"{ref.url}:{ref.tag or 'latest'}", files=names, quiet=True)
        finally:
            os.chdir(cwd)
    print(pushed_manifest_digest(response, args.reference))
    return 0


if __name__ == "__main__":
    run_cli(main)

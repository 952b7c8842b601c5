"""Trains the iris SVC from an OCI dataset and pushes the model with omlmd.

Inputs (environment, or the matching flag):
  DATASET       dataset reference, by tag or digest (registry/repo:tag or repo@sha256:...)
  IMAGE         where to push the model (registry/repo[:tag])
  MIN_ACCURACY  optional: fail when the test accuracy is below it
  PLAIN_HTTP    "true": use plain HTTP for registry.local:5000 and loopback registries
  RESULTS_DIR   where the Tekton results go (default /tekton/results)

Writes the results IMAGE_URL, IMAGE_DIGEST, DATASET_URL, DATASET_DIGEST, ACCURACY and
DATASET_ARTIFACT_INPUTS ({"uri", "digest"}: the dataset in Chains' SLSA materials).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn
from omlmd.helpers import Helper
from omlmd.provider import OMLMDRegistry
from sklearn.svm import SVC

from ociref import (
    INDEX_TYPES,
    Reference,
    TrainerError,
    download_blob,
    fetch_manifest,
    make_registry,
    parse_reference,
    pushed_manifest_digest,
    run_cli,
)

RANDOM_STATE = 42
MODEL_FILE = "model.joblib"
MODEL_NAME = "iris-svc"
DATASET_PARTS = ("X_train", "X_test", "y_train", "y_test")
TITLE = "org.opencontainers.image.title"


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=env("DATASET", ""))
    p.add_argument("--image", default=env("IMAGE", ""))
    p.add_argument("--min-accuracy", default=env("MIN_ACCURACY", ""))
    p.add_argument("--results-dir", default=env("RESULTS_DIR", "/tekton/results"))
    p.add_argument(
        "--plain-http",
        action="store_true",
        default=env("PLAIN_HTTP", "").lower() in ("1", "true", "yes"),
    )
    return p.parse_args(argv)


def pull_dataset(ref: Reference, plain_http: bool, workdir: Path) -> tuple[str, dict[str, np.ndarray]]:
    """Resolves ref to a digest, then reads every layer by digest, verified."""
    registry = make_registry(ref, plain_http)
    digest, manifest, _ = fetch_manifest(registry, ref)
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        raise TrainerError(f"{ref.url}@{digest}: is an index; give the dataset's manifest digest")
    pinned = Reference(ref.registry, ref.repository, None, digest)
    arrays: dict[str, np.ndarray] = {}
    for layer in manifest.get("layers", []):
        title = (layer.get("annotations") or {}).get(TITLE, "")
        part = title.split(".", 1)[0]
        if part not in DATASET_PARTS or part in arrays:
            continue
        dest = workdir / f"{part}.joblib"
        download_blob(registry, pinned, layer["digest"], layer.get("size"), dest)
        # joblib unpickles: safe only because the bytes match the pinned digest.
        arrays[part] = np.asarray(joblib.load(dest))
    missing = [p for p in DATASET_PARTS if p not in arrays]
    if missing:
        raise TrainerError(
            f"{ref.url}@{digest}: dataset has no layer titled {', '.join(missing)} (.joblib)"
        )
    return digest, arrays


def train(data: dict[str, np.ndarray]) -> tuple[SVC, float]:
    # The issue asks for SVC(probability=True); scikit-learn 1.9 deprecates it noisily.
    warnings.filterwarnings("ignore", message="The `probability` parameter", category=FutureWarning)
    model = SVC(kernel="linear", probability=True, random_state=RANDOM_STATE)
    model.fit(data["X_train"], data["y_train"])
    accuracy = float(model.score(data["X_test"], data["y_test"]))
    return model, accuracy


def push_model(image: Reference, plain_http: bool, model: SVC, metadata: dict[str, object], workdir: Path) -> str:
    """Pushes model.joblib with omlmd and returns the digest of the manifest it sent."""
    registry = make_registry(image, plain_http, OMLMDRegistry)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / MODEL_FILE
    # protocol fixed so the pickle bytes do not depend on joblib's default.
    joblib.dump(model, path, protocol=4)
    target = f"{image.url}:{image.tag or 'latest'}"
    cwd = os.getcwd()
    os.chdir(workdir)  # oras only pushes files under the working directory
    try:
        response = Helper(registry).push(
            target,
            MODEL_FILE,
            name=MODEL_NAME,
            model_format_name="sklearn",
            model_format_version=sklearn.__version__,
            **metadata,
        )
    finally:
        os.chdir(cwd)
    return pushed_manifest_digest(response, target)


def write_results(results_dir: Path, results: dict[str, str]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    for name, value in results.items():
        (results_dir / name).write_text(value)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.dataset:
        raise TrainerError("DATASET is required (registry/repository:tag or @sha256:...)")
    if not args.image:
        raise TrainerError("IMAGE is required (registry/repository[:tag])")
    dataset = parse_reference(args.dataset)
    image = parse_reference(args.image)
    if image.digest:
        raise TrainerError(f"IMAGE {args.image}: give a tag to push to, not a digest")
    min_accuracy = None
    if args.min_accuracy.strip():
        try:
            min_accuracy = float(args.min_accuracy)
        except ValueError:
            raise TrainerError(f"MIN_ACCURACY {args.min_accuracy!r} is not a number") from None
        if not 0 <= min_accuracy <= 1:
            raise TrainerError(f"MIN_ACCURACY {args.min_accuracy!r} must be between 0 and 1")

    with tempfile.TemporaryDirectory(prefix="trainer-") as tmp:
        workdir = Path(tmp)
        dataset_digest, data = pull_dataset(dataset, args.plain_http, workdir)
        print(f"dataset {dataset.url}@{dataset_digest}", flush=True)
        model, accuracy = train(data)
        print(f"accuracy {accuracy:.4f}", flush=True)
        if min_accuracy is not None and accuracy < min_accuracy:
            raise TrainerError(f"accuracy {accuracy:.4f} is below MIN_ACCURACY {min_accuracy}; model not pushed")
        metadata = {
            "accuracy": accuracy,
            "dataset_url": dataset.url,
            "dataset_digest": dataset_digest,
        }
        model_digest = push_model(image, args.plain_http, model, metadata, workdir / "model")
        print(f"model {image.url}@{model_digest}", flush=True)

    write_results(
        Path(args.results_dir),
        {
            "IMAGE_URL": args.image,
            "IMAGE_DIGEST": model_digest,
            "DATASET_URL": dataset.url,
            "DATASET_DIGEST": dataset_digest,
            "ACCURACY": repr(accuracy),
            "DATASET_ARTIFACT_INPUTS": json.dumps({"uri": dataset.url, "digest": dataset_digest}),
        },
    )
    return 0


if __name__ == "__main__":
    run_cli(main)

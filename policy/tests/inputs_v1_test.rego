# SLSA v1 test inputs: the same run as in inputs_test.rego, as Chains' formats
# slsa/v2alpha4 (and slsa/v2alpha3) would record it. Written by hand, shaped
# after tektoncd/chains v0.29.2, pkg/chains/formats/slsa: internal/provenance
# (predicate buildDefinition and runDetails), internal/build_definition,
# internal/external_parameters (externalParameters.runSpec, the run's spec),
# internal/resolved_dependencies (names), internal/material (oci:// step
# images, *ARTIFACT_INPUTS), internal/results and v2alpha4/internal/{taskrun,
# pipelinerun} (byproducts), and test/testdata/slsa/v2alpha4 for the JSON.
package oml_inputs

# Chains' default buildType, and its Statement type for SLSA v1.
v1_build_type := "https://tekton.dev/chains/v2/slsa"

v1_statement_type := "https://in-toto.io/Statement/v1"

pipelinerun_name := "oml-chains-7xk2p"

taskrun_name := "oml-chains-7xk2p-train"

# Tekton params as the run's spec holds them: [{name, value}].
v1_params := [{"name": name, "value": params[name]} | some name in ["IMAGE", "DATASET", "MIN_ACCURACY", "TRAINER_IMAGE"]]

# A result as a byproduct: named <kind>/<run>/<result>, its value as JSON in
# base64 (protojson's form of the bytes Chains stores).
byproduct(prefix, result) := {
	"name": concat("/", [prefix, result.name]),
	"mediaType": "application/json",
	"content": base64.encode(json.marshal(result.value)),
}

# Chains leaves the image results out of the byproducts: they are the subject.
v1_byproducts(prefix, results) := [byproduct(prefix, result) |
	some result in results
	not endswith(result.name, "IMAGE_URL")
	not endswith(result.name, "IMAGE_DIGEST")
]

# A step's image: an unnamed dependency, from the pod's imageID.
trainer_dependency := {
	"uri": "oci://registry.local:5000/oml-trainer",
	"digest": {"sha256": trainer_hex},
}

# DATASET_ARTIFACT_INPUTS (a TaskRun result, also a Pipeline result here): its
# uri as written, its digest split at the colon.
dataset_dependency := {
	"name": "inputs/result",
	"uri": dataset_url,
	"digest": {"sha256": dataset_hex},
}

v1_metadata(started, finished) := {
	"invocationId": "0f3b6f0e-5a1c-4c39-9d0e-6f4b8c1e2a7d",
	"startedOn": started,
	"finishedOn": finished,
}

# Part of what Tekton records of its feature flags; no rule reads them.
v1_internal_parameters := {"tekton-pipelines-feature-flags": {
	"EnableAPIFields": "beta",
	"ResultExtractionMethod": "termination-message",
}}

taskrun_v1_statement := {
	"_type": v1_statement_type,
	"subject": subject,
	"predicateType": "https://slsa.dev/provenance/v1",
	"predicate": {
		"buildDefinition": {
			"buildType": v1_build_type,
			"externalParameters": {"runSpec": {
				"params": v1_params,
				"serviceAccountName": "default",
				"taskRef": {"kind": "Task", "name": "oml-train"},
				"timeout": "1h0m0s",
			}},
			"internalParameters": v1_internal_parameters,
			"resolvedDependencies": [trainer_dependency, dataset_dependency],
		},
		"runDetails": {
			"builder": {"id": "https://tekton.dev/chains/v2"},
			"metadata": v1_metadata("2026-09-01T10:00:10Z", "2026-09-01T10:01:30Z"),
			"byproducts": v1_byproducts(concat("/", ["taskRunResults", taskrun_name]), train_results),
		},
	},
}

# With deep inspection on (as the action sets it) the byproducts hold the
# Pipeline's results and its TaskRun's; without, the Pipeline's only. The
# Pipeline exposes DATASET_ARTIFACT_INPUTS, so the dataset is a dependency.
pipelinerun_v1_statement := {
	"_type": v1_statement_type,
	"subject": subject,
	"predicateType": "https://slsa.dev/provenance/v1",
	"predicate": {
		"buildDefinition": {
			"buildType": v1_build_type,
			"externalParameters": {"runSpec": {
				"params": v1_params,
				"pipelineRef": {"name": "oml-train"},
				"taskRunTemplate": {"serviceAccountName": "default"},
				"timeouts": {"pipeline": "1h0m0s"},
			}},
			"internalParameters": v1_internal_parameters,
			"resolvedDependencies": [trainer_dependency, dataset_dependency],
		},
		"runDetails": {
			"builder": {"id": "https://tekton.dev/chains/v2"},
			"metadata": v1_metadata("2026-09-01T10:00:00Z", "2026-09-01T10:01:31Z"),
			"byproducts": array.concat(
				v1_byproducts(concat("/", ["pipelineRunResults", pipelinerun_name]), train_results),
				v1_byproducts(concat("/", ["taskRunResults", taskrun_name]), train_results),
			),
		},
	},
}

both_v1 := {"attestations": [
	{"statement": pipelinerun_v1_statement},
	{"statement": taskrun_v1_statement},
]}

# A v1 statement with its byproducts made from `results` under `prefixes`.
v1_with_results(statement, prefixes, results) := patched(statement, [{
	"op": "replace",
	"path": "/predicate/runDetails/byproducts",
	"value": [b | some prefix in prefixes; some b in v1_byproducts(prefix, results)],
}])

# The TaskRun v1 statement with its results replaced.
taskrun_v1_with_results(results) := v1_with_results(
	taskrun_v1_statement,
	[concat("/", ["taskRunResults", taskrun_name])],
	results,
)

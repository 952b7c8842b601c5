# Test inputs shaped like what ec hands the rules for a model that the action
# trained: input.attestations[].statement, one Statement per Chains attestation
# attached to the model. The TaskRun statement follows the field layout of the
# real Chains output in test/fixtures/chains-real/taskrun-attestation.dsse.json;
# the PipelineRun one follows Chains' slsa/v1 pipelinerun format (buildConfig.tasks
# with name, ref, status, steps, invocation and results {name, type, value}).
package oml_inputs

trainer_hex := "06ea17a8981d25b0315ff17bd1ebad3d95c15a3f8b764eaadb93612d9b61a54e"

dataset_hex := "b277fd623676a525c29b9eb155afc8c9010681814ceafb2d7627f47b9a232576"

model_hex := "9372c470eeadd5ecd9c3c74c2b3cb633f8e2f2fad799250a0f70d652b6b825e4"

trainer_ref := concat("", ["registry.local:5000/oml-trainer@sha256:", trainer_hex])

dataset_url := "registry.local:5000/ml-iris"

dataset_digest := concat("", ["sha256:", dataset_hex])

# What the action passes as rule data.
rule_data := {
	"allowed_dataset_prefixes": ["registry.local:5000/"],
	"min_accuracy": 0.9,
}

params := {
	"DATASET": "registry.local:5000/ml-iris:data",
	"IMAGE": "registry.local:5000/ml-iris:model",
	"MIN_ACCURACY": "",
	"TRAINER_IMAGE": trainer_ref,
}

# Chains records the step's image from the pod status (imageID), with oci://.
train_step := {
	"annotations": null,
	"arguments": null,
	"entryPoint": "python /app/train.py",
	"environment": {
		"container": "train",
		"image": concat("", ["oci://", trainer_ref]),
	},
}

trainer_material := {
	"digest": {"sha256": trainer_hex},
	"uri": "oci://registry.local:5000/oml-trainer",
}

# From the DATASET_ARTIFACT_INPUTS result: its uri as written, digest split.
dataset_material := {
	"digest": {"sha256": dataset_hex},
	"uri": dataset_url,
}

subject := [{
	"name": "registry.local:5000/ml-iris",
	"digest": {"sha256": model_hex},
}]

taskrun_statement := {
	"_type": "https://in-toto.io/Statement/v0.1",
	"subject": subject,
	"predicateType": "https://slsa.dev/provenance/v0.2",
	"predicate": {
		"buildConfig": {"steps": [train_step]},
		"buildType": "tekton.dev/v1/TaskRun",
		"builder": {"id": "https://tekton.dev/chains/v2"},
		"invocation": {
			"configSource": {},
			"environment": {"labels": {
				"app.kubernetes.io/managed-by": "tekton-pipelines",
				"tekton.dev/pipelineTask": "train",
				"tekton.dev/task": "oml-train",
			}},
			"parameters": params,
		},
		"materials": [trainer_material, dataset_material],
		"metadata": {
			"buildFinishedOn": "2026-09-01T10:01:30Z",
			"buildStartedOn": "2026-09-01T10:00:10Z",
			"completeness": {"environment": false, "materials": false, "parameters": false},
			"reproducible": false,
		},
	},
}

train_results := [
	{"name": "ACCURACY", "type": "string", "value": "0.9666666666666667"},
	{
		"name": "DATASET_ARTIFACT_INPUTS",
		"type": "object",
		"value": {"digest": dataset_digest, "uri": dataset_url},
	},
	{"name": "DATASET_DIGEST", "type": "string", "value": dataset_digest},
	{"name": "DATASET_URL", "type": "string", "value": dataset_url},
	{"name": "IMAGE_DIGEST", "type": "string", "value": concat("", ["sha256:", model_hex])},
	{"name": "IMAGE_URL", "type": "string", "value": "registry.local:5000/ml-iris:model"},
]

# Without deep inspection the PipelineRun materials hold the step images only:
# DATASET_ARTIFACT_INPUTS is a task result, not a Pipeline result.
pipelinerun_statement := {
	"_type": "https://in-toto.io/Statement/v0.1",
	"subject": subject,
	"predicateType": "https://slsa.dev/provenance/v0.2",
	"predicate": {
		"buildConfig": {"tasks": [{
			"name": "train",
			"ref": {"kind": "Task", "name": "oml-train"},
			"startedOn": "2026-09-01T10:00:10Z",
			"finishedOn": "2026-09-01T10:01:30Z",
			"serviceAccountName": "default",
			"status": "Succeeded",
			"steps": [train_step],
			"invocation": {
				"configSource": {},
				"environment": {"labels": {"tekton.dev/pipelineTask": "train"}},
				"parameters": params,
			},
			"results": train_results,
		}]},
		"buildType": "tekton.dev/v1/PipelineRun",
		"builder": {"id": "https://tekton.dev/chains/v2"},
		"invocation": {
			"configSource": {},
			"environment": {"labels": {"tekton.dev/pipeline": "oml-train"}},
			"parameters": params,
		},
		"materials": [trainer_material],
		"metadata": {
			"buildFinishedOn": "2026-09-01T10:01:31Z",
			"buildStartedOn": "2026-09-01T10:00:00Z",
			"completeness": {"environment": false, "materials": false, "parameters": false},
			"reproducible": false,
		},
	},
}

# Both attestations of one run, as ec finds them attached to the model.
both := {"attestations": [
	{"statement": pipelinerun_statement},
	{"statement": taskrun_statement},
]}

# One statement alone.
only(statement) := {"attestations": [{"statement": statement}]}

# A statement with JSON Patch operations applied (RFC 6902 paths).
patched(statement, operations) := json.patch(statement, operations)

# The PipelineRun statement with the train task's results replaced.
pipelinerun_with_results(results) := patched(
	pipelinerun_statement,
	[{"op": "replace", "path": "/predicate/buildConfig/tasks/0/results", "value": results}],
)

# train_results with the named result's value replaced, or the result dropped
# when value is null.
results_with(name, value) := [r |
	some original in train_results
	r := _replace(original, name, value)
]

_replace(result, name, _) := result if result.name != name

_replace(result, name, value) := object.union(result, {"value": value}) if {
	result.name == name
	value != null
}

# Both statements, the PipelineRun one carrying `results`.
both_with_results(results) := {"attestations": [
	{"statement": pipelinerun_with_results(results)},
	{"statement": taskrun_statement},
]}

# The codes of a package's deny results.
codes(results) := {r.code | some r in results}

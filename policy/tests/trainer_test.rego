package trainer_test

import data.oml_inputs as inputs
import data.trainer

# Test names: test_<short_name>_pass_* and test_<short_name>_fail_*
# (test/policy.test.ts checks that every rule has both).

pinned_msgs(results) := {r.msg | some r in results; r.code == "trainer.pinned"}

tag_ref := "registry.local:5000/oml-trainer:latest"

test_pinned_pass_both_attestations if {
	results := trainer.deny with input as inputs.both
	count(pinned_msgs(results)) == 0
}

# Like the real TaskRun attestation in test/fixtures/chains-real: steps only.
test_pinned_pass_taskrun_only if {
	results := trainer.deny with input as inputs.only(inputs.taskrun_statement)
	count(pinned_msgs(results)) == 0
}

test_pinned_pass_pipelinerun_only if {
	results := trainer.deny with input as inputs.only(inputs.pipelinerun_statement)
	count(pinned_msgs(results)) == 0
}

# A run without a TRAINER_IMAGE parameter (e.g. its own Task) is judged by its steps.
test_pinned_pass_without_trainer_param if {
	statement := inputs.patched(inputs.taskrun_statement, [{"op": "remove", "path": "/predicate/invocation/parameters/TRAINER_IMAGE"}])
	results := trainer.deny with input as inputs.only(statement)
	count(pinned_msgs(results)) == 0
}

test_pinned_fail_step_image_by_tag if {
	statement := inputs.patched(inputs.taskrun_statement, [{"op": "replace", "path": "/predicate/buildConfig/steps/0/environment/image", "value": concat("", ["oci://", tag_ref])}])
	results := trainer.deny with input as inputs.only(statement)
	pinned_msgs(results) == {`Step "train" ran image "oci://registry.local:5000/oml-trainer:latest", which is not referenced by digest`}
}

test_pinned_fail_pipelinerun_step_image_not_a_reference if {
	every image in ["oci://sha256:06ea17a8981d25b0315ff17bd1ebad3d95c15a3f8b764eaadb93612d9b61a54e", "", "oci://registry.local:5000/oml-trainer@sha256:06ea17"] {
		statement := inputs.patched(inputs.pipelinerun_statement, [{"op": "replace", "path": "/predicate/buildConfig/tasks/0/steps/0/environment/image", "value": image}])
		results := trainer.deny with input as inputs.only(statement)
		pinned_msgs(results) == {sprintf("Step %q ran image %q, which is not referenced by digest", ["train", image])}
	}
}

# Chains records the resolved image even for a tag: the parameter shows the tag.
test_pinned_fail_trainer_param_by_tag if {
	statement := inputs.patched(inputs.pipelinerun_statement, [
		{"op": "replace", "path": "/predicate/invocation/parameters/TRAINER_IMAGE", "value": tag_ref},
		{"op": "replace", "path": "/predicate/buildConfig/tasks/0/invocation/parameters/TRAINER_IMAGE", "value": tag_ref},
	])
	results := trainer.deny with input as {"attestations": [{"statement": statement}, {"statement": inputs.taskrun_statement}]}
	pinned_msgs(results) == {`The TRAINER_IMAGE parameter "registry.local:5000/oml-trainer:latest" is not referenced by digest`}
}

test_pinned_fail_taskrun_trainer_param_by_tag if {
	statement := inputs.patched(inputs.taskrun_statement, [{"op": "replace", "path": "/predicate/invocation/parameters/TRAINER_IMAGE", "value": tag_ref}])
	results := trainer.deny with input as inputs.only(statement)
	count(pinned_msgs(results)) == 1
}

test_pinned_fail_no_steps_recorded if {
	every value in [
		{"attestations": []},
		inputs.only(inputs.patched(inputs.taskrun_statement, [{"op": "replace", "path": "/predicate/buildConfig", "value": {"steps": []}}])),
		inputs.only(inputs.patched(inputs.pipelinerun_statement, [{"op": "remove", "path": "/predicate/buildConfig/tasks/0/steps"}])),
	] {
		results := trainer.deny with input as value
		pinned_msgs(results) == {"The provenance records no step image: no buildConfig steps"}
	}
}

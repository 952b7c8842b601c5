package trainer_test

import data.oml_inputs as inputs
import data.trainer

# Test names: test_<short_name>_pass_* and test_<short_name>_fail_*
# (test/policy.test.ts checks that every rule has both).

pinned_msgs(results) := {r.msg | some r in results; r.code == "trainer.pinned"}

tag_ref := "registry.local:5000/oml-trainer:latest"

no_steps_msg := "The provenance records no step image: no buildConfig steps (SLSA v0.2) and no image among resolvedDependencies (SLSA v1)"

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
		pinned_msgs(results) == {no_steps_msg}
	}
}

# SLSA v1 (Chains slsa/v2alpha4): step images are the unnamed resolvedDependencies.
test_pinned_pass_v1_both_attestations if {
	every value in [inputs.both_v1, inputs.only(inputs.taskrun_v1_statement), inputs.only(inputs.pipelinerun_v1_statement)] {
		results := trainer.deny with input as value
		count(pinned_msgs(results)) == 0
	}
}

# Named dependencies (the task's source, inputs/result) are no step images.
test_pinned_pass_v1_named_dependencies_are_not_steps if {
	task := {"name": "task", "uri": "git+https://example.com/catalog.git", "digest": {"sha1": "28b1236e"}}
	statement := inputs.patched(inputs.taskrun_v1_statement, [{"op": "add", "path": "/predicate/buildDefinition/resolvedDependencies/0", "value": task}])
	results := trainer.deny with input as inputs.only(statement)
	count(pinned_msgs(results)) == 0
}

# The image is judged as <uri>@<algorithm>:<hex>, or the uri alone without a digest.
test_pinned_fail_v1_step_image_digest_not_sha256 if {
	repository := "oci://registry.local:5000/oml-trainer"
	every digest, image in {
		{"sha256": "06ea17"}: concat("", [repository, "@sha256:06ea17"]),
		{"sha512": inputs.trainer_hex}: concat("", [repository, "@sha512:", inputs.trainer_hex]),
		{}: repository,
	} {
		statement := inputs.patched(inputs.taskrun_v1_statement, [{"op": "replace", "path": "/predicate/buildDefinition/resolvedDependencies/0/digest", "value": digest}])
		results := trainer.deny with input as inputs.only(statement)
		pinned_msgs(results) == {sprintf("A step or sidecar ran image %q, which is not referenced by digest", [image])}
	}
}

test_pinned_fail_v1_trainer_param_by_tag if {
	every statement in [inputs.taskrun_v1_statement, inputs.pipelinerun_v1_statement] {
		tagged := inputs.patched(statement, [{"op": "replace", "path": "/predicate/buildDefinition/externalParameters/runSpec/params/3/value", "value": tag_ref}])
		results := trainer.deny with input as inputs.only(tagged)
		pinned_msgs(results) == {`The TRAINER_IMAGE parameter "registry.local:5000/oml-trainer:latest" is not referenced by digest`}
	}
}

test_pinned_fail_v1_no_step_images if {
	statement := inputs.patched(inputs.taskrun_v1_statement, [{"op": "remove", "path": "/predicate/buildDefinition/resolvedDependencies/0"}])
	results := trainer.deny with input as inputs.only(statement)
	pinned_msgs(results) == {no_steps_msg}
}

package dataset_test

import data.dataset
import data.oml_inputs as inputs

# Test names: test_<short_name>_pass_* and test_<short_name>_fail_*
# (test/policy.test.ts checks that every rule has both).

permitted_msgs(results) := {r.msg | some r in results; r.code == "dataset.permitted"}

pinned_msgs(results) := {r.msg | some r in results; r.code == "dataset.pinned"}

# --- dataset.permitted ---------------------------------------------------------

test_permitted_pass_both_attestations if {
	results := dataset.deny with input as inputs.both
		with data.rule_data__configuration__ as inputs.rule_data
	count(permitted_msgs(results)) == 0
}

test_permitted_pass_pipelinerun_only if {
	results := dataset.deny with input as inputs.only(inputs.pipelinerun_statement)
		with data.rule_data__configuration__ as inputs.rule_data
	count(permitted_msgs(results)) == 0
}

test_permitted_pass_one_of_several_prefixes if {
	results := dataset.deny with input as inputs.both
		with data.rule_data__configuration__ as {"allowed_dataset_prefixes": ["quay.io/acme/", "registry.local:5000/ml-"]}
	count(permitted_msgs(results)) == 0
}

# ec's --extra-rule-data gives every value as a string: one prefix, or the
# text of the .json/.yaml file it names.
test_permitted_pass_prefix_strings_from_extra_rule_data if {
	every text in [
		"registry.local:5000/",
		" registry.local:5000/ ",
		`["quay.io/acme/", "registry.local:5000/"]`,
		"- quay.io/acme/\n- registry.local:5000/\n",
	] {
		results := dataset.deny with input as inputs.both
			with data.rule_data__configuration__ as {"allowed_dataset_prefixes": text}
		count(permitted_msgs(results)) == 0
	}
}

test_permitted_pass_rule_data_from_data_sources if {
	custom := dataset.deny with input as inputs.both
		with data.rule_data_custom as {"allowed_dataset_prefixes": ["registry.local:5000/"]}
	count(permitted_msgs(custom)) == 0
	defaults := dataset.deny with input as inputs.both
		with data.rule_data as {"allowed_dataset_prefixes": ["registry.local:5000/"]}
	count(permitted_msgs(defaults)) == 0
}

test_permitted_pass_oci_scheme_in_recorded_url if {
	statement := inputs.pipelinerun_with_results(inputs.results_with("DATASET_URL", "oci://registry.local:5000/ml-iris"))
	results := dataset.deny with input as inputs.only(statement)
		with data.rule_data__configuration__ as inputs.rule_data
	count(permitted_msgs(results)) == 0
}

test_permitted_fail_no_rule_data if {
	results := dataset.deny with input as inputs.both
	permitted_msgs(results) == {"No dataset location is allowed: the rule data allowed_dataset_prefixes is missing or empty"}
}

test_permitted_fail_empty_or_blank_prefixes if {
	every value in [[], [""], ["  "], "", " ", null, [3], {"a": "registry.local:5000/"}] {
		results := dataset.deny with input as inputs.both
			with data.rule_data__configuration__ as {"allowed_dataset_prefixes": value}
		permitted_msgs(results) == {"No dataset location is allowed: the rule data allowed_dataset_prefixes is missing or empty"}
	}
}

# ec splits --extra-rule-data at commas, so a string never carries a
# comma-separated list: a string that is not a YAML/JSON list is one prefix.
test_permitted_fail_string_is_one_prefix if {
	every text in ["quay.io/acme/,registry.local:5000/", "quay.io/acme/ registry.local:5000/"] {
		results := dataset.deny with input as inputs.both
			with data.rule_data__configuration__ as {"allowed_dataset_prefixes": text}
		permitted_msgs(results) == {sprintf("Dataset %q is not under an allowed prefix (%s)", [inputs.dataset_url, text])}
	}
}

# The configured value wins over a data source's, also when it allows less.
test_permitted_fail_configuration_overrides_data_sources if {
	results := dataset.deny with input as inputs.both
		with data.rule_data__configuration__ as {"allowed_dataset_prefixes": ["quay.io/acme/"]}
		with data.rule_data as {"allowed_dataset_prefixes": ["registry.local:5000/"]}
	count(permitted_msgs(results)) == 1
}

test_permitted_fail_dataset_not_under_prefix if {
	results := dataset.deny with input as inputs.both
		with data.rule_data__configuration__ as {"allowed_dataset_prefixes": ["quay.io/acme/", "registry.local:5000/other/"]}
	permitted_msgs(results) == {`Dataset "registry.local:5000/ml-iris" is not under an allowed prefix (quay.io/acme/, registry.local:5000/other/)`}
}

# A prefix is matched from the start, not anywhere in the reference.
test_permitted_fail_prefix_elsewhere_in_url if {
	statement := inputs.pipelinerun_with_results(inputs.results_with("DATASET_URL", "evil.example/registry.local:5000/ml-iris"))
	results := dataset.deny with input as inputs.only(statement)
		with data.rule_data__configuration__ as inputs.rule_data
	count(permitted_msgs(results)) == 1
}

# A TaskRun provenance records no task results: alone it names no dataset.
test_permitted_fail_taskrun_only if {
	results := dataset.deny with input as inputs.only(inputs.taskrun_statement)
		with data.rule_data__configuration__ as inputs.rule_data
	permitted_msgs(results) == {"The provenance records no dataset: no task result DATASET_URL"}
}

test_permitted_fail_missing_dataset_url_result if {
	results := dataset.deny with input as inputs.both_with_results(inputs.results_with("DATASET_URL", null))
		with data.rule_data__configuration__ as inputs.rule_data
	permitted_msgs(results) == {"The provenance records no dataset: no task result DATASET_URL"}
}

test_permitted_fail_no_attestations if {
	every value in [{"attestations": []}, {}] {
		results := dataset.deny with input as value
			with data.rule_data__configuration__ as inputs.rule_data
		permitted_msgs(results) == {"The provenance records no dataset: no task result DATASET_URL"}
	}
}

# Only SLSA provenance (v0.2 or v1) counts; another predicate type records nothing here.
test_permitted_fail_other_predicate_type if {
	statement := inputs.patched(inputs.pipelinerun_statement, [{"op": "replace", "path": "/predicateType", "value": "https://example.com/other/v1"}])
	results := dataset.deny with input as inputs.only(statement)
		with data.rule_data__configuration__ as inputs.rule_data
	count(permitted_msgs(results)) == 1
}

# Every recorded dataset must be permitted, e.g. when a reproducible model
# carries the provenance of two runs.
test_permitted_fail_one_of_two_runs if {
	other := inputs.pipelinerun_with_results(inputs.results_with("DATASET_URL", "docker.io/someone/iris"))
	value := {"attestations": array.concat(inputs.both.attestations, [{"statement": other}])}
	results := dataset.deny with input as value
		with data.rule_data__configuration__ as inputs.rule_data
	permitted_msgs(results) == {`Dataset "docker.io/someone/iris" is not under an allowed prefix (registry.local:5000/)`}
}

# SLSA v1 (Chains slsa/v2alpha4): the TaskRun provenance records its results
# too, among the byproducts.
test_permitted_pass_v1_both_attestations if {
	every value in [inputs.both_v1, inputs.only(inputs.taskrun_v1_statement), inputs.only(inputs.pipelinerun_v1_statement)] {
		results := dataset.deny with input as value
			with data.rule_data__configuration__ as inputs.rule_data
		count(permitted_msgs(results)) == 0
	}
}

# Without deep inspection a PipelineRun records only the Pipeline's results;
# slsa/v2alpha3 names byproducts without the run.
test_permitted_pass_v1_pipeline_results_and_v2alpha3_names if {
	every statement in [
		inputs.v1_with_results(inputs.pipelinerun_v1_statement, [concat("/", ["pipelineRunResults", inputs.pipelinerun_name])], inputs.train_results),
		inputs.v1_with_results(inputs.taskrun_v1_statement, ["taskRunResults"], inputs.train_results),
	] {
		results := dataset.deny with input as inputs.only(statement)
			with data.rule_data__configuration__ as inputs.rule_data
		count(permitted_msgs(results)) == 0
	}
}

test_permitted_fail_v1_dataset_not_under_prefix if {
	results := dataset.deny with input as inputs.both_v1
		with data.rule_data__configuration__ as {"allowed_dataset_prefixes": ["quay.io/acme/"]}
	permitted_msgs(results) == {`Dataset "registry.local:5000/ml-iris" is not under an allowed prefix (quay.io/acme/)`}
}

test_permitted_fail_v1_missing_dataset_url_result if {
	results := dataset.deny with input as inputs.only(inputs.taskrun_v1_with_results(inputs.results_with("DATASET_URL", null)))
		with data.rule_data__configuration__ as inputs.rule_data
	permitted_msgs(results) == {"The provenance records no dataset: no task result DATASET_URL"}
}

# A StepAction's results (stepResults/<run>/<name>) are not the task's.
test_permitted_fail_v1_step_results_only if {
	statement := inputs.v1_with_results(inputs.taskrun_v1_statement, [concat("/", ["stepResults", inputs.taskrun_name])], inputs.train_results)
	results := dataset.deny with input as inputs.only(statement)
		with data.rule_data__configuration__ as inputs.rule_data
	permitted_msgs(results) == {"The provenance records no dataset: no task result DATASET_URL"}
}

# Content that is not base64 of JSON is no dataset location.
test_permitted_fail_v1_undecodable_content if {
	name := concat("/", ["taskRunResults", inputs.taskrun_name, "DATASET_URL"])
	every content in ["registry.local:5000/ml-iris", base64.encode("registry.local:5000/ml-iris"), 42] {
		statement := inputs.patched(inputs.taskrun_v1_statement, [{
			"op": "replace", "path": "/predicate/runDetails/byproducts",
			"value": [{"name": name, "mediaType": "application/json", "content": content}],
		}])
		results := dataset.deny with input as inputs.only(statement)
			with data.rule_data__configuration__ as inputs.rule_data
		permitted_msgs(results) == {`Dataset "" is not under an allowed prefix (registry.local:5000/)`}
	}
}

# --- dataset.pinned ------------------------------------------------------------

# The dataset material comes from the TaskRun provenance.
test_pinned_pass_both_attestations if {
	results := dataset.deny with input as inputs.both
		with data.rule_data__configuration__ as inputs.rule_data
	count(pinned_msgs(results)) == 0
}

# With deep inspection (or a Pipeline result *ARTIFACT_INPUTS) the PipelineRun
# provenance lists the dataset itself.
test_pinned_pass_pipelinerun_with_dataset_material if {
	statement := inputs.patched(inputs.pipelinerun_statement, [{"op": "add", "path": "/predicate/materials/-", "value": inputs.dataset_material}])
	results := dataset.deny with input as inputs.only(statement)
	count(pinned_msgs(results)) == 0
}

test_pinned_pass_material_with_scheme_and_tag if {
	material := {"uri": "oci://registry.local:5000/ml-iris:data", "digest": {"sha256": inputs.dataset_hex}}
	statement := inputs.patched(inputs.pipelinerun_statement, [{"op": "add", "path": "/predicate/materials/-", "value": material}])
	results := dataset.deny with input as inputs.only(statement)
	count(pinned_msgs(results)) == 0
}

test_pinned_fail_pipelinerun_without_dataset_material if {
	results := dataset.deny with input as inputs.only(inputs.pipelinerun_statement)
	pinned_msgs(results) == {sprintf("Dataset registry.local:5000/ml-iris@%s is not among the provenance materials", [inputs.dataset_digest])}
}

test_pinned_fail_taskrun_only if {
	results := dataset.deny with input as inputs.only(inputs.taskrun_statement)
	pinned_msgs(results) == {"The provenance records no dataset digest: no task result DATASET_DIGEST"}
}

test_pinned_fail_missing_digest_result if {
	results := dataset.deny with input as inputs.both_with_results(inputs.results_with("DATASET_DIGEST", null))
	pinned_msgs(results) == {"The provenance records no dataset digest: no task result DATASET_DIGEST"}
}

test_pinned_fail_malformed_digest if {
	every digest in [
		"",
		inputs.dataset_hex,
		"sha256:abc",
		upper(inputs.dataset_digest),
		concat("", ["sha512:", inputs.dataset_hex]),
		"registry.local:5000/ml-iris:data",
	] {
		results := dataset.deny with input as inputs.both_with_results(inputs.results_with("DATASET_DIGEST", digest))
		pinned_msgs(results) == {sprintf("Dataset digest %q is not sha256:<64 hex>", [digest])}
	}
}

test_pinned_fail_material_digest_differs if {
	other := "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	results := dataset.deny with input as inputs.both_with_results(inputs.results_with("DATASET_DIGEST", other))
	pinned_msgs(results) == {sprintf("Dataset registry.local:5000/ml-iris@%s is not among the provenance materials", [other])}
}

# The same digest under another repository is not the recorded dataset.
test_pinned_fail_material_repository_differs if {
	results := dataset.deny with input as inputs.both_with_results(inputs.results_with("DATASET_URL", "registry.local:5000/other"))
	pinned_msgs(results) == {sprintf("Dataset registry.local:5000/other@%s is not among the provenance materials", [inputs.dataset_digest])}
}

# Without a DATASET_URL the digest alone must match a material.
test_pinned_pass_digest_without_url if {
	results := dataset.deny with input as inputs.both_with_results(inputs.results_with("DATASET_URL", null))
	count(pinned_msgs(results)) == 0
}

test_pinned_fail_digest_without_url_not_in_materials if {
	results := dataset.deny with input as inputs.only(inputs.pipelinerun_with_results(inputs.results_with("DATASET_URL", null)))
	pinned_msgs(results) == {sprintf("Dataset %s is not among the provenance materials", [inputs.dataset_digest])}
}

# SLSA v1: the dataset is an inputs/result dependency in both provenances.
test_pinned_pass_v1_both_attestations if {
	every value in [inputs.both_v1, inputs.only(inputs.taskrun_v1_statement), inputs.only(inputs.pipelinerun_v1_statement)] {
		results := dataset.deny with input as value
		count(pinned_msgs(results)) == 0
	}
}

# A TaskRun and a PipelineRun format may differ: the dataset digest from one
# provenance, the dependency from the other.
test_pinned_pass_formats_mixed if {
	value := {"attestations": [
		{"statement": inputs.pipelinerun_statement},
		{"statement": inputs.taskrun_v1_statement},
	]}
	results := dataset.deny with input as value
	count(pinned_msgs(results)) == 0
}

# A PipelineRun whose Pipeline does not expose DATASET_ARTIFACT_INPUTS lists
# only the step images.
test_pinned_fail_v1_dataset_not_a_dependency if {
	statement := inputs.patched(inputs.pipelinerun_v1_statement, [{"op": "remove", "path": "/predicate/buildDefinition/resolvedDependencies/1"}])
	results := dataset.deny with input as inputs.only(statement)
	pinned_msgs(results) == {sprintf("Dataset registry.local:5000/ml-iris@%s is not among the provenance materials", [inputs.dataset_digest])}
}

test_pinned_fail_v1_malformed_digest if {
	results := dataset.deny with input as inputs.only(inputs.taskrun_v1_with_results(inputs.results_with("DATASET_DIGEST", "sha256:abc")))
	pinned_msgs(results) == {`Dataset digest "sha256:abc" is not sha256:<64 hex>`}
}

test_pinned_fail_v1_dependency_digest_differs if {
	other := "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	results := dataset.deny with input as inputs.only(inputs.taskrun_v1_with_results(inputs.results_with("DATASET_DIGEST", other)))
	pinned_msgs(results) == {sprintf("Dataset registry.local:5000/ml-iris@%s is not among the provenance materials", [other])}
}

test_pinned_fail_v1_missing_digest_result if {
	results := dataset.deny with input as inputs.only(inputs.taskrun_v1_with_results(inputs.results_with("DATASET_DIGEST", null)))
	pinned_msgs(results) == {"The provenance records no dataset digest: no task result DATASET_DIGEST"}
}

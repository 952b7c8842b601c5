package model_test

import data.model
import data.oml_inputs as inputs

# Test names: test_<short_name>_pass_* and test_<short_name>_fail_*
# (test/policy.test.ts checks that every rule has both).

accuracy_msgs(results) := {r.msg | some r in results; r.code == "model.accuracy"}

test_accuracy_pass_above_minimum if {
	results := model.deny with input as inputs.both
		with data.rule_data__configuration__ as inputs.rule_data
	count(accuracy_msgs(results)) == 0
}

test_accuracy_pass_equal_to_minimum if {
	results := model.deny with input as inputs.both_with_results(inputs.results_with("ACCURACY", "0.95"))
		with data.rule_data__configuration__ as {"min_accuracy": 0.95}
	count(accuracy_msgs(results)) == 0
}

# Without min_accuracy there is no minimum, so nothing needs to be recorded.
test_accuracy_pass_no_minimum if {
	every rule_data in [{}, {"min_accuracy": null}, {"min_accuracy": ""}, {"min_accuracy": "  "}] {
		results := model.deny with input as inputs.only(inputs.taskrun_statement)
			with data.rule_data__configuration__ as rule_data
		count(accuracy_msgs(results)) == 0
	}
}

# ec's --extra-rule-data gives every value as a string.
test_accuracy_pass_minimum_as_text if {
	every text in ["0.9", " 0.95 ", ".96", "9.6e-1", "0", "1e-1"] {
		results := model.deny with input as inputs.both
			with data.rule_data__configuration__ as {"min_accuracy": text}
		count(accuracy_msgs(results)) == 0
	}
}

test_accuracy_pass_minimum_from_data_source if {
	results := model.deny with input as inputs.both
		with data.rule_data as {"min_accuracy": 0.5}
	count(accuracy_msgs(results)) == 0
}

test_accuracy_fail_below_minimum if {
	results := model.deny with input as inputs.both
		with data.rule_data__configuration__ as {"min_accuracy": 0.99}
	accuracy_msgs(results) == {"Model accuracy 0.9666666666666667 is below the minimum 0.99"}
}

test_accuracy_fail_below_minimum_as_text if {
	results := model.deny with input as inputs.both
		with data.rule_data__configuration__ as {"min_accuracy": "0.99"}
	accuracy_msgs(results) == {"Model accuracy 0.9666666666666667 is below the minimum 0.99"}
}

# The configured value wins over a data source's, also when it is stricter.
test_accuracy_fail_configuration_overrides_data_source if {
	results := model.deny with input as inputs.both
		with data.rule_data__configuration__ as {"min_accuracy": 0.99}
		with data.rule_data as {"min_accuracy": 0.5}
	count(accuracy_msgs(results)) == 1
}

# A TaskRun provenance records no task results.
test_accuracy_fail_taskrun_only if {
	results := model.deny with input as inputs.only(inputs.taskrun_statement)
		with data.rule_data__configuration__ as inputs.rule_data
	accuracy_msgs(results) == {"The provenance records no model accuracy: no task result ACCURACY"}
}

test_accuracy_fail_missing_accuracy_result if {
	results := model.deny with input as inputs.both_with_results(inputs.results_with("ACCURACY", null))
		with data.rule_data__configuration__ as inputs.rule_data
	accuracy_msgs(results) == {"The provenance records no model accuracy: no task result ACCURACY"}
}

test_accuracy_fail_no_attestations if {
	results := model.deny with input as {"attestations": []}
		with data.rule_data__configuration__ as inputs.rule_data
	accuracy_msgs(results) == {"The provenance records no model accuracy: no task result ACCURACY"}
}

test_accuracy_fail_accuracy_not_a_number if {
	every value in ["n/a", "", "NaN", "Inf", "0.9.1", {"value": "0.97"}] {
		results := model.deny with input as inputs.both_with_results(inputs.results_with("ACCURACY", value))
			with data.rule_data__configuration__ as inputs.rule_data
		accuracy_msgs(results) == {sprintf("The recorded accuracy %v is not a number", [value])}
	}
}

test_accuracy_fail_invalid_minimum if {
	every value in ["high", "90%", 1.5, -0.1, "95", true, ["0.9"], {"min": 0.9}] {
		results := model.deny with input as inputs.both
			with data.rule_data__configuration__ as {"min_accuracy": value}
		accuracy_msgs(results) == {sprintf("The rule data min_accuracy %v is not a number from 0 to 1", [value])}
	}
}

# Every recorded accuracy counts, e.g. when a model carries two runs' provenance.
test_accuracy_fail_one_of_two_runs if {
	other := inputs.pipelinerun_with_results(inputs.results_with("ACCURACY", "0.8"))
	value := {"attestations": array.concat(inputs.both.attestations, [{"statement": other}])}
	results := model.deny with input as value
		with data.rule_data__configuration__ as inputs.rule_data
	accuracy_msgs(results) == {"Model accuracy 0.8 is below the minimum 0.9"}
}

# SLSA v1 (Chains slsa/v2alpha4): the TaskRun provenance records its results
# too, among the byproducts.
test_accuracy_pass_v1_both_attestations if {
	every value in [inputs.both_v1, inputs.only(inputs.taskrun_v1_statement), inputs.only(inputs.pipelinerun_v1_statement)] {
		results := model.deny with input as value
			with data.rule_data__configuration__ as inputs.rule_data
		count(accuracy_msgs(results)) == 0
	}
}

# The content written out: base64 of the JSON text "0.9666666666666667".
accuracy_byproduct := {
	"name": "taskRunResults/oml-chains-7xk2p-train/ACCURACY",
	"mediaType": "application/json",
	"content": "IjAuOTY2NjY2NjY2NjY2NjY2NyI=",
}

test_accuracy_pass_v1_content_as_written if {
	statement := inputs.patched(inputs.taskrun_v1_statement, [{"op": "replace", "path": "/predicate/runDetails/byproducts", "value": [accuracy_byproduct]}])
	results := model.deny with input as inputs.only(statement)
		with data.rule_data__configuration__ as {"min_accuracy": 0.96}
	count(accuracy_msgs(results)) == 0
}

test_accuracy_fail_v1_below_minimum if {
	statement := inputs.patched(inputs.taskrun_v1_statement, [{"op": "replace", "path": "/predicate/runDetails/byproducts", "value": [accuracy_byproduct]}])
	every value in [inputs.both_v1, inputs.only(statement)] {
		results := model.deny with input as value
			with data.rule_data__configuration__ as {"min_accuracy": 0.99}
		accuracy_msgs(results) == {"Model accuracy 0.9666666666666667 is below the minimum 0.99"}
	}
}

test_accuracy_fail_v1_missing_accuracy_result if {
	results := model.deny with input as inputs.only(inputs.taskrun_v1_with_results(inputs.results_with("ACCURACY", null)))
		with data.rule_data__configuration__ as inputs.rule_data
	accuracy_msgs(results) == {"The provenance records no model accuracy: no task result ACCURACY"}
}

# Content that is not base64 of JSON is no accuracy.
test_accuracy_fail_v1_undecodable_content if {
	every content in ["0.97", base64.encode("0.97 and more"), null] {
		byproduct := object.union(accuracy_byproduct, {"content": content})
		statement := inputs.patched(inputs.taskrun_v1_statement, [{"op": "replace", "path": "/predicate/runDetails/byproducts", "value": [byproduct]}])
		results := model.deny with input as inputs.only(statement)
			with data.rule_data__configuration__ as inputs.rule_data
		accuracy_msgs(results) == {"The recorded accuracy null is not a number"}
	}
}

# Each run's results count: here a second TaskRun of the same PipelineRun.
test_accuracy_fail_v1_one_of_two_runs if {
	other := inputs.v1_byproducts("taskRunResults/oml-chains-7xk2p-retrain", inputs.results_with("ACCURACY", "0.8"))
	statement := inputs.patched(inputs.pipelinerun_v1_statement, [{"op": "add", "path": "/predicate/runDetails/byproducts/-", "value": other[0]}])
	results := model.deny with input as inputs.only(statement)
		with data.rule_data__configuration__ as inputs.rule_data
	accuracy_msgs(results) == {"Model accuracy 0.8 is below the minimum 0.9"}
}

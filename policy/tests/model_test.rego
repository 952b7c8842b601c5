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

# METADATA
# title: Model
# description: >-
#   Checks the trained model's quality as the Chains build provenance
#   (SLSA v0.2, Chains format slsa/v1) records it.
package model

# METADATA
# title: Model accuracy at least the minimum
# description: >-
#   When the rule data min_accuracy is set (a number from 0 to 1), the test
#   accuracy the training task recorded (its ACCURACY result in the PipelineRun
#   provenance) is at least that value. Without min_accuracy there is no
#   minimum; with it, a missing or non-numeric accuracy is a violation.
# custom:
#   short_name: accuracy
#   solution: >-
#     Improve the model or its dataset until the test accuracy reaches the
#     minimum, or lower the rule data min_accuracy (the action's min-accuracy
#     input). The training task must write the accuracy to its ACCURACY result.
deny contains result if {
	some msg in _violations
	result := {"code": "model.accuracy", "msg": msg}
}

_violations contains msg if {
	_minimum_set
	not _valid_minimum
	msg := sprintf("The rule data min_accuracy %v is not a number from 0 to 1", [_rule_data("min_accuracy")])
}

_violations contains msg if {
	_valid_minimum
	count(_result_values("ACCURACY")) == 0
	msg := "The provenance records no model accuracy: no task result ACCURACY"
}

_violations contains msg if {
	_valid_minimum
	some value in _result_values("ACCURACY")
	not _number(value)
	msg := sprintf("The recorded accuracy %v is not a number", [value])
}

_violations contains msg if {
	minimum := _minimum
	some value in _result_values("ACCURACY")
	accuracy := _number(value)
	accuracy < minimum
	msg := sprintf("Model accuracy %v is below the minimum %v", [accuracy, minimum])
}

# Unset: no key, null, or an empty string (an action input left empty).
_minimum_set if {
	value := _rule_data("min_accuracy")
	not _blank(value)
}

_blank(value) if {
	is_string(value)
	trim_space(value) == ""
}

_minimum := value if {
	value := _number(_rule_data("min_accuracy"))
	value >= 0
	value <= 1
}

_valid_minimum if _minimum >= 0

# A number, or a decimal number as text: ec's --extra-rule-data passes every
# value as a string, and Tekton results are strings. The pattern keeps
# to_number from erroring on text such as "n/a", "NaN" or "Inf".
_number(value) := value if {
	is_number(value)
} else := to_number(trim_space(value)) if {
	is_string(value)
	regex.match(`^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$`, value)
}

# --- provenance and rule data (the same in each package: no shared library) --

# Chains' slsa/v1 format: an in-toto Statement with a SLSA v0.2 predicate.
_predicates contains statement.predicate if {
	some attestation in input.attestations
	statement := attestation.statement
	statement.predicateType == "https://slsa.dev/provenance/v0.2"
}

# A PipelineRun predicate lists its tasks with their results; a TaskRun
# predicate has only buildConfig.steps, so it contributes no results.
_tasks contains task if {
	some predicate in _predicates
	some task in predicate.buildConfig.tasks
}

_result_values(name) := {result.value |
	some task in _tasks
	some result in task.results
	result.name == name
}

# ec puts a policy source's ruleData (and --extra-rule-data) under
# data.rule_data__configuration__; data sources may add rule_data_custom or
# rule_data. The first one that has the key wins; null counts as unset.
_rule_data(key) := value if {
	value := data.rule_data__configuration__[key]
	value != null
} else := value if {
	value := data.rule_data_custom[key]
	value != null
} else := value if {
	value := data.rule_data[key]
	value != null
}

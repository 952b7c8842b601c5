# METADATA
# title: Model
# description: >-
#   Checks the trained model's quality as the Chains build provenance records
#   it: SLSA v0.2 (Chains format slsa/v1) or SLSA v1 (slsa/v2alpha3,
#   slsa/v2alpha4).
package model

# METADATA
# title: Model accuracy at least the minimum
# description: >-
#   When the rule data min_accuracy is set (a number from 0 to 1), the test
#   accuracy the training task recorded (its ACCURACY result; SLSA v0.2: in the
#   PipelineRun provenance, SLSA v1: in the byproducts of either provenance)
#   is at least that value. Without min_accuracy there is no minimum; with
#   it, a missing or non-numeric accuracy is a violation.
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

# --- provenance access (each package keeps its own: no shared library) -------

# Chains writes SLSA v0.2 provenance in its format slsa/v1, and SLSA v1 in
# slsa/v2alpha3 and slsa/v2alpha4 (read in tektoncd/chains v0.29.2,
# pkg/chains/formats/slsa). Either is read here into the same shapes, so the
# rules above need not know which one they judge.
_v02_predicates contains statement.predicate if {
	some attestation in input.attestations
	statement := attestation.statement
	statement.predicateType == "https://slsa.dev/provenance/v0.2"
}

# Keyed by attestation, so that two attestations' runs never merge.
_v1_predicates[i] := statement.predicate if {
	some i, attestation in input.attestations
	statement := attestation.statement
	statement.predicateType == "https://slsa.dev/provenance/v1"
}

# _tasks: {"results": [{name, value}]}, the results one run recorded.

# v0.2: a PipelineRun predicate lists its tasks with their results; a TaskRun
# predicate has only buildConfig.steps, so it contributes no results.
_tasks contains {"results": task.results} if {
	some predicate in _v02_predicates
	some task in predicate.buildConfig.tasks
}

# v1: the results of one run, from the byproducts.
_tasks contains {"results": results} if {
	some run in {result.run | some result in _v1_results}
	results := [{"name": result.name, "value": result.value} |
		some result in _v1_results
		result.run == run
	]
}

# A v1 result is a byproduct named taskRunResults/<run>/<result> or
# pipelineRunResults/<run>/<result> (slsa/v2alpha3 leaves out <run>), its
# value JSON in base64 content. A TaskRun provenance holds the TaskRun's
# results; a PipelineRun one the Pipeline's results, and with deep inspection
# each TaskRun's too. Chains leaves out the image results (IMAGE_URL,
# IMAGE_DIGEST): they are the subject.
_v1_results contains {"run": [i, run], "name": name, "value": _byproduct_value(byproduct)} if {
	some i, predicate in _v1_predicates
	some byproduct in predicate.runDetails.byproducts
	is_string(byproduct.name)
	parts := split(byproduct.name, "/")
	count(parts) > 1
	parts[0] in {"taskRunResults", "pipelineRunResults"}
	name := parts[count(parts) - 1]
	run := array.slice(parts, 0, count(parts) - 1)
}

# Content that is not base64 of JSON gives null, which no rule accepts.
_byproduct_value(byproduct) := value if {
	is_string(byproduct.content)
	base64.is_valid(byproduct.content)
	text := base64.decode(byproduct.content)
	json.is_valid(text)
	value := json.unmarshal(text)
} else := null

# --- results and rule data ---------------------------------------------------

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

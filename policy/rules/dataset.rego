# METADATA
# title: Dataset
# description: >-
#   Checks the dataset the model was trained on, as the Chains build
#   provenance records it: SLSA v0.2 (Chains format slsa/v1) or SLSA v1
#   (slsa/v2alpha3, slsa/v2alpha4).
package dataset

# METADATA
# title: Dataset from an allowed location
# description: >-
#   The dataset the model was trained from, as recorded in the training task's
#   DATASET_URL result (SLSA v0.2: in the PipelineRun provenance; SLSA v1: in
#   the byproducts of either provenance), starts with one of the prefixes in
#   the rule data allowed_dataset_prefixes. No configured prefix, or no
#   recorded dataset, is a violation.
# custom:
#   short_name: permitted
#   solution: >-
#     Train from a dataset under an allowed prefix, or add the dataset's location
#     to the rule data allowed_dataset_prefixes (the action's
#     allowed-dataset-prefixes input). End a prefix with "/" so that it cannot
#     match a sibling repository.
deny contains result if {
	some msg in _permitted_violations
	result := {"code": "dataset.permitted", "msg": msg}
}

# METADATA
# title: Dataset pinned by digest
# description: >-
#   The training task recorded the dataset digest it trained from (the
#   DATASET_DIGEST result) as sha256:<64 hex>, and the provenance lists that
#   dataset with the same digest among its materials (SLSA v1: its
#   resolvedDependencies).
# custom:
#   short_name: pinned
#   solution: >-
#     Have the training task resolve the dataset to a digest, write it to the
#     DATASET_DIGEST result, and write the DATASET_ARTIFACT_INPUTS object result
#     ({uri, digest}) so that Chains records the dataset as a material.
deny contains result if {
	some msg in _pinned_violations
	result := {"code": "dataset.pinned", "msg": msg}
}

# --- dataset.permitted -------------------------------------------------------

_permitted_violations contains msg if {
	count(_allowed_prefixes) == 0
	msg := "No dataset location is allowed: the rule data allowed_dataset_prefixes is missing or empty"
}

_permitted_violations contains msg if {
	count(_dataset_urls) == 0
	msg := "The provenance records no dataset: no task result DATASET_URL"
}

_permitted_violations contains msg if {
	count(_allowed_prefixes) > 0
	some url in _dataset_urls
	not _permitted(url)
	msg := sprintf("Dataset %q is not under an allowed prefix (%s)", [url, concat(", ", sort(_allowed_prefixes))])
}

_permitted(url) if {
	some prefix in _allowed_prefixes
	startswith(trim_prefix(url, "oci://"), prefix)
}

# Every DATASET_URL any task recorded: all of them must be permitted. A value
# that is not a string counts as an empty one, which no prefix permits.
_dataset_urls contains url if {
	some value in _result_values("DATASET_URL")
	url := _text(value)
}

# The prefixes as a set of non-empty strings; an empty entry would permit anything.
_allowed_prefixes contains prefix if {
	some item in _prefix_list
	is_string(item)
	prefix := trim_space(item)
	prefix != ""
}

# A list in the policy config's ruleData. ec's --extra-rule-data gives every
# value as a string: the text of the .json/.yaml file the value names, read
# here as a YAML/JSON list, or else the value itself, one prefix. ec splits
# that flag at commas, so a list comes in a file; nothing is split here.
_prefix_list := value if {
	value := _rule_data("allowed_dataset_prefixes")
	is_array(value)
} else := parsed if {
	text := _rule_data("allowed_dataset_prefixes")
	is_string(text)
	yaml.is_valid(text)
	parsed := yaml.unmarshal(text)
	is_array(parsed)
} else := [text] if {
	text := _rule_data("allowed_dataset_prefixes")
	is_string(text)
} else := []

# --- dataset.pinned ----------------------------------------------------------

_pinned_violations contains msg if {
	count(_dataset_records) == 0
	msg := "The provenance records no dataset digest: no task result DATASET_DIGEST"
}

_pinned_violations contains msg if {
	some record in _dataset_records
	not regex.match(`^sha256:[0-9a-f]{64}$`, record.digest)
	msg := sprintf("Dataset digest %q is not sha256:<64 hex>", [record.digest])
}

_pinned_violations contains msg if {
	some record in _dataset_records
	regex.match(`^sha256:[0-9a-f]{64}$`, record.digest)
	not _in_materials(record)
	msg := sprintf("Dataset %s is not among the provenance materials", [_label(record)])
}

_label(record) := sprintf("%s@%s", [record.url, record.digest]) if {
	record.url != ""
} else := record.digest

# The digest a task recorded, with the DATASET_URL of the same task ("" if none).
_dataset_records contains {"url": url, "digest": digest} if {
	some task in _tasks
	some result in task.results
	result.name == "DATASET_DIGEST"
	digest := _text(result.value)
	url := _task_text(task, "DATASET_URL")
}

# The material may come from another attestation of the same image: Chains puts
# *ARTIFACT_INPUTS results into the TaskRun provenance's materials, and into the
# PipelineRun's only for Pipeline results or with deep inspection on (the same
# in either SLSA version).
_in_materials(record) if {
	some material in _materials
	material.digest.sha256 == substring(record.digest, count("sha256:"), -1)
	_same_repository(material.uri, record.url)
}

_same_repository(_, url) if url == ""

_same_repository(uri, url) if {
	is_string(uri)
	_repository(uri) == _repository(url)
}

# registry/repository of a reference: no oci:// scheme, tag or digest. A colon
# after the last "/" starts a tag; one before it belongs to a registry port.
_repository(ref) := regex.replace(split(trim_prefix(ref, "oci://"), "@")[0], `:[^/]*$`, "")

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

# _materials: {uri, digest: {algorithm: hex}}, what the build used. v0.2 lists
# them as materials; v1 as resolvedDependencies, named or not (step and
# sidecar images, the task or pipeline, inputs/result from *ARTIFACT_INPUTS).
_materials contains material if {
	some predicate in _v02_predicates
	some material in predicate.materials
}

_materials contains dependency if {
	some predicate in _v1_predicates
	some dependency in predicate.buildDefinition.resolvedDependencies
}

# --- results and rule data ---------------------------------------------------

_result_values(name) := {result.value |
	some task in _tasks
	some result in task.results
	result.name == name
}

_task_text(task, name) := _text(value) if {
	some result in task.results
	result.name == name
	value := result.value
} else := ""

_text(value) := trim_space(value) if {
	is_string(value)
} else := ""

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

# METADATA
# title: Trainer
# description: >-
#   Checks the image that trained the model, as the Chains build provenance
#   records it: SLSA v0.2 (Chains format slsa/v1) or SLSA v1 (slsa/v2alpha3,
#   slsa/v2alpha4).
package trainer

# METADATA
# title: Trainer image pinned by digest
# description: >-
#   Every step image the provenance records for the run (SLSA v0.2: TaskRun
#   buildConfig.steps, or the steps of each PipelineRun task; SLSA v1: the
#   step and sidecar images among resolvedDependencies) is referenced as
#   repository@sha256:<64 hex>, and so is the TRAINER_IMAGE parameter wherever
#   the provenance records it: the trainer must be chosen by digest, not by a
#   tag that can move.
# custom:
#   short_name: pinned
#   solution: >-
#     Give the trainer image by digest (repository@sha256:...), e.g. the
#     action's trainer-image input or the TRAINER_IMAGE parameter.
deny contains result if {
	some msg in _violations
	result := {"code": "trainer.pinned", "msg": msg}
}

_violations contains msg if {
	count(_steps) == 0
	msg := "The provenance records no step image: no buildConfig steps (SLSA v0.2) and no image among resolvedDependencies (SLSA v1)"
}

_violations contains msg if {
	some step in _steps
	not _by_digest(step.image)
	msg := _unpinned_step(step)
}

_violations contains msg if {
	some value in _trainer_params
	not _by_digest(value)
	msg := sprintf("The TRAINER_IMAGE parameter %q is not referenced by digest", [value])
}

# Chains records a step's image as oci://<repository>@<algorithm>:<hex>.
_by_digest(ref) if {
	is_string(ref)
	regex.match(`^[^@\s]+@sha256:[0-9a-f]{64}$`, trim_prefix(ref, "oci://"))
}

# SLSA v1 does not record which step ran an image.
_unpinned_step(step) := sprintf("Step %q ran image %q, which is not referenced by digest", [step.container, step.image]) if {
	step.container != ""
} else := sprintf("A step or sidecar ran image %q, which is not referenced by digest", [step.image])

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

# _steps: {container, image}, each step image the run recorded; container is
# "" where the provenance does not name the step. Both attestations of an
# image count.

# v0.2, TaskRun provenance: buildConfig.steps.
_steps contains _v02_step(step) if {
	some predicate in _v02_predicates
	some step in predicate.buildConfig.steps
}

# v0.2, PipelineRun provenance: the steps of each task in buildConfig.tasks.
_steps contains _v02_step(step) if {
	some predicate in _v02_predicates
	some task in predicate.buildConfig.tasks
	some step in task.steps
}

_v02_step(step) := {"container": _step_container(step), "image": _step_image(step)}

_step_image(step) := image if {
	image := step.environment.image
} else := ""

_step_container(step) := name if {
	name := step.environment.container
} else := "(unnamed)"

# v1: the step and sidecar images are the resolvedDependencies Chains leaves
# unnamed (it names the others task, pipeline, pipelineTask, inputs/result or
# stepAction/<step>), each oci://<repository> with the digest of the image
# the pod ran.
_steps contains {"container": "", "image": image} if {
	some predicate in _v1_predicates
	some dependency in predicate.buildDefinition.resolvedDependencies
	is_object(dependency)
	object.get(dependency, "name", "") == ""
	some image in _references(dependency)
}

# <uri>@<algorithm>:<hex> for each recorded digest, or the uri alone.
_references(dependency) := refs if {
	refs := {sprintf("%s@%s:%s", [dependency.uri, algorithm, hex]) |
		some algorithm, hex in dependency.digest
	}
	count(refs) > 0
} else := {object.get(dependency, "uri", "")}

# _trainer_params: each TRAINER_IMAGE parameter value the run recorded.

# v0.2: the run's own parameters, and each PipelineRun task's.
_trainer_params contains value if {
	some predicate in _v02_predicates
	value := predicate.invocation.parameters.TRAINER_IMAGE
}

_trainer_params contains value if {
	some predicate in _v02_predicates
	some task in predicate.buildConfig.tasks
	value := task.invocation.parameters.TRAINER_IMAGE
}

# v1: the run's own params, externalParameters.runSpec.params as [{name,
# value}]; a PipelineRun's tasks' params are in their TaskRuns' provenance.
_trainer_params contains param.value if {
	some predicate in _v1_predicates
	some param in predicate.buildDefinition.externalParameters.runSpec.params
	param.name == "TRAINER_IMAGE"
}

# METADATA
# title: Trainer
# description: >-
#   Checks the image that trained the model, as the Chains build provenance
#   (SLSA v0.2, Chains format slsa/v1) records it.
package trainer

# METADATA
# title: Trainer image pinned by digest
# description: >-
#   Every step image the provenance records for the run (TaskRun
#   buildConfig.steps, or the steps of each PipelineRun task) is referenced as
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
	msg := "The provenance records no step image: no buildConfig steps"
}

_violations contains msg if {
	some step in _steps
	image := _step_image(step)
	not _by_digest(image)
	msg := sprintf("Step %q ran image %q, which is not referenced by digest", [_step_container(step), image])
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

_step_image(step) := image if {
	image := step.environment.image
} else := ""

_step_container(step) := name if {
	name := step.environment.container
} else := "(unnamed)"

# TaskRun provenance: buildConfig.steps; PipelineRun provenance: the steps of
# each task in buildConfig.tasks. Both attestations of an image count.
_steps contains step if {
	some predicate in _predicates
	some step in predicate.buildConfig.steps
}

_steps contains step if {
	some task in _tasks
	some step in task.steps
}

# The run's own parameters, and each PipelineRun task's.
_trainer_params contains value if {
	some predicate in _predicates
	value := predicate.invocation.parameters.TRAINER_IMAGE
}

_trainer_params contains value if {
	some task in _tasks
	value := task.invocation.parameters.TRAINER_IMAGE
}

# --- provenance (the same in each package: no shared library) ---------------

# Chains' slsa/v1 format: an in-toto Statement with a SLSA v0.2 predicate.
_predicates contains statement.predicate if {
	some attestation in input.attestations
	statement := attestation.statement
	statement.predicateType == "https://slsa.dev/provenance/v0.2"
}

_tasks contains task if {
	some predicate in _predicates
	some task in predicate.buildConfig.tasks
}

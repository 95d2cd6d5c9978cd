# Every target bootstraps .venv on first use: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STAGE  ?= dev

.PHONY: setup demo test bench package iam deploy lint clean python-matches-layer mutate

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip<26.3"  # chalice 1.34 pins pip<26.3
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/safetycatch demo

# Pre-merge checks first (style and complexity, types), then the suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2

# Mutation testing of the safety modules (pyproject.toml [tool.mutmut]); not part of `make test`: it takes hours on
# two cores. MUTANTS narrows it (e.g. MUTANTS="chalicelib.decide.limits*"); the score is printed at the end.
mutate: $(STAMP)
	-$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	@$(BIN)/mutmut export-cicd-stats >/dev/null
	@$(BIN)/python -m bench.mutation_score mutants/mutmut-cicd-stats.json

bench: $(STAMP)
	@$(BIN)/python bench/bench.py

lint: $(STAMP)
	@$(BIN)/safetycatch lint policies

# chalice package builds for the Python that runs it: it must be the one the stage's Powertools layer is for.
python-matches-layer: $(STAMP)
	@$(BIN)/python -m safetycatch.build check-python $(STAGE)

package: $(STAMP) python-matches-layer
	@APPROVERS="$(APPROVERS)" $(BIN)/python -m safetycatch.build package $(STAGE)

iam: $(STAMP)
	@$(BIN)/python -m safetycatch.build iam

# One command from a clone to a running bot (AWS CLI + credentials):
#   make deploy STAGE=prod BUCKET=my-artifacts SLACK_CHANNEL=C0123ABCD APPROVERS=U0123ABCD,S0SREGRP1
# The channel is the stack's SlackChannel parameter (every function and the dead-letter notifier read it), the
# approvers are compiled into the package; RESERVED (each handler, default 10), API_RESERVED (Slack routes, 5) and
# SWEEP_RESERVED (organisation sweep worker, 10, at least 2) size the bot's reserved concurrency for small accounts
# (`safetycatch doctor` says whether they fit); it ends by writing the Slack app manifest with the stack's own URL.
deploy: package
	@test -n "$(BUCKET)" || { echo "make deploy: set BUCKET=<an S3 bucket in the target region for the artifact>" >&2; exit 2; }
	aws cloudformation package --template-file build/package/sam.yaml --s3-bucket $(BUCKET) \
		--s3-prefix safetycatch/$(STAGE) --output-template-file build/package/packaged.yaml
	aws cloudformation deploy --template-file build/package/packaged.yaml --stack-name safetycatch-$(STAGE) \
		--capabilities CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
		$(if $(ORG_ID)$(TRAIL)$(SLACK_CHANNEL)$(MANAGEMENT_ACCOUNT)$(RESERVED)$(API_RESERVED)$(SWEEP_RESERVED),--parameter-overrides \
			$(if $(ORG_ID),OrganizationId=$(ORG_ID)) $(if $(TRAIL),TrailMode=$(TRAIL)) \
			$(if $(MANAGEMENT_ACCOUNT),ManagementAccountId=$(MANAGEMENT_ACCOUNT)) \
			$(if $(SLACK_CHANNEL),SlackChannel=$(SLACK_CHANNEL)) \
			$(if $(RESERVED),ReservedConcurrency=$(RESERVED)) \
			$(if $(API_RESERVED),ApiHandlerReservedConcurrency=$(API_RESERVED)) \
			$(if $(SWEEP_RESERVED),SweepWorkerReservedConcurrency=$(SWEEP_RESERVED)))
	@# CloudTrail records IAM calls in us-east-1 only: a bot elsewhere gets them through a rule there
	@region=$$(aws configure get region); region=$${AWS_REGION:-$${AWS_DEFAULT_REGION:-$$region}}; \
	if [ "$$region" != us-east-1 ]; then \
		aws cloudformation deploy --region us-east-1 --template-file deploy/iam-forwarder.yaml \
			--stack-name safetycatch-$(STAGE)-iam-events --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
			--parameter-overrides BotRegion=$$region; \
	fi
	@url=$$(aws cloudformation describe-stacks --stack-name safetycatch-$(STAGE) \
		--query "Stacks[0].Outputs[?OutputKey=='EndpointURL'].OutputValue" --output text); \
	$(BIN)/python -m safetycatch.build slack-manifest "$$url" > build/slack-app-manifest.yaml && \
	echo "deployed safetycatch-$(STAGE): its API is $$url" && \
	echo "next: create the Slack app from build/slack-app-manifest.yaml (api.slack.com/apps, From an app manifest)," && \
	echo "      put its token in the secret (safetycatch doctor --stage $(STAGE) prints the command)," && \
	echo "      then prove it: .venv/bin/safetycatch selftest --stage $(STAGE)"

clean:
	rm -rf $(VENV) build dist chalicelib/compiled_policies.json

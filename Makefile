# Each target runs `python make.py TARGET $(ARGS)`: make.py checks the interpreter (3.11 or newer), makes .venv
# (again when the interpreter changed), installs the locked dependencies, then runs the tool. Without make (on
# Windows, say) run `python make.py TARGET` yourself; `make help` and `python make.py help` list the targets.
PYTHON ?= python3
ifneq ($(origin PYTHON),file)
export PYTHON  # given by the user: make.py uses it or says why it cannot; otherwise it looks for 3.11+ itself
endif
MAKEPY := $(shell command -v $(PYTHON) 2>/dev/null || echo python3) make.py

STUDENT_TARGETS := help setup grade test train play lab clean
MAINTAINER_TARGETS := exercises notebooks bench lock release
.DEFAULT_GOAL := help
.PHONY: $(STUDENT_TARGETS) $(MAINTAINER_TARGETS)

$(STUDENT_TARGETS) $(MAINTAINER_TARGETS):
	@$(MAKEPY) $@ $(ARGS)

# any other name: make.py says it is not a target and lists them
Makefile: ;
%:
	@$(MAKEPY) $@ $(ARGS)

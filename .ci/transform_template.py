"""Writes infra/template.yaml as CloudFormation receives it (SAM's transform, offline)
to the path given, for cfn-lint to check what lints of the SAM template cannot see: a
function's policy naming its own role is a circular dependency only once SAM has put
that policy into the role. Code and state machine locations, which SAM requires to be
S3 URIs before a package, are replaced by placeholders.

    .ci/.state/sam/bin/python .ci/transform_template.py OUT.json
"""

import json
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    def load(self):
        return {}


text = open("infra/template.yaml").read()
text = re.sub(r"(?m)^(\s+CodeUri:).*$", r"\1 s3://revscale-placeholder/code.zip", text)
text = re.sub(r"(?m)^(\s+DefinitionUri:).*$", r"\1 s3://revscale-placeholder/definition.json", text)
out = transform(yaml_parse(text), {}, NoManagedPolicies())
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=1)
print(f"transformed: {len(out['Resources'])} resources")

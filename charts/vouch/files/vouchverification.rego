package vouchverification

import future.keywords.contains
import future.keywords.if
import future.keywords.in

images contains c.image if {
  some c in input.review.object.spec.containers
}

images contains c.image if {
  some c in input.review.object.spec.initContainers
}

images contains c.image if {
  some c in input.review.object.spec.ephemeralContainers
}

namespace := ns if {
  ns := input.review.namespace
  ns != ""
} else := ns if {
  ns := input.review.object.metadata.namespace
} else := ""

keys := [key |
  some image in images
  key := concat("", ["[", namespace, "]", image])
]

response := external_data({"provider": "vouch", "keys": keys}) if {
  count(keys) > 0
}

# The key without its "[namespace]" prefix.
image_of(key) := substring(key, indexof(key, "]") + 1, -1) if {
  startswith(key, "[")
} else := key

ok_status(code) if code == 200

ok_status(code) if code == 0

violation contains {"msg": msg} if {
  not ok_status(response.status_code)
  msg := sprintf("vouch: the provider failed (HTTP status %v): %v", [response.status_code, response.system_error])
}

violation contains {"msg": msg} if {
  ok_status(response.status_code)
  response.system_error != ""
  msg := sprintf("vouch: the provider failed: %v", [response.system_error])
}

violation contains {"msg": msg} if {
  some e in response.errors
  msg := sprintf("image %v: %v", [image_of(e[0]), e[1]])
}

violation contains {"msg": msg} if {
  some r in response.responses
  not r[1].isSuccess
  msg := sprintf("image %v denied by vouch: %v", [image_of(r[0]), r[1].reason])
}

# A key the provider did not answer at all is not admitted either.
violation contains {"msg": msg} if {
  ok_status(response.status_code)
  response.system_error == ""
  some key in keys
  not answered[key]
  msg := sprintf("image %v: vouch gave no answer", [image_of(key)])
}

answered contains r[0] if {
  some r in response.responses
}

answered contains e[0] if {
  some e in response.errors
}

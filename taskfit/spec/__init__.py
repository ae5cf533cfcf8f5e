"""The task spec: YAML -> a frozen, validated `Spec`, and the forms of its `loss:` key."""

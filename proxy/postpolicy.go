package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A POST policy (S3's browser-based uploads): an expiration and the
// conditions every form field must meet. Its signature covers the policy
// alone, so the policy is the only thing binding the form's fields (and,
// through content-length-range, the file's size) to what its signer meant:
// it is checked strictly, and a field no condition covers is refused.

// postPolicy is a decoded policy document.
type postPolicy struct {
	expiration time.Time
	conds      []policyCond
	// lengthRange is content-length-range, when the policy sets one.
	hasRange bool
	min, max int64
}

// policyCond is one eq or starts-with condition on a field.
type policyCond struct {
	op    string // "eq" or "starts-with"
	field string // lowercase, without "$"
	value string
	raw   string // as S3 quotes it in its error
}

func errInvalidPolicy(msg string, cause error) *s3Error {
	return newS3Error("InvalidPolicyDocument", http.StatusBadRequest, "Invalid Policy: "+msg, cause)
}

func errPolicyDenied(msg string) *s3Error {
	return newS3Error("AccessDenied", http.StatusForbidden, "Invalid according to Policy: "+msg, nil)
}

// parsePolicy decodes the base64 policy field.
func parsePolicy(b64 string) (*postPolicy, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errInvalidPolicy("Invalid Base64 encoding.", err)
	}
	var doc struct {
		Expiration *string            `json:"expiration"`
		Conditions *[]json.RawMessage `json:"conditions"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		return nil, errInvalidPolicy("Invalid JSON.", err)
	}
	switch {
	case doc.Expiration == nil:
		return nil, errInvalidPolicy("Policy missing expiration.", nil)
	case doc.Conditions == nil:
		return nil, errInvalidPolicy("Policy missing conditions.", nil)
	}
	p := &postPolicy{}
	if p.expiration, err = time.Parse(time.RFC3339Nano, *doc.Expiration); err != nil {
		return nil, errInvalidPolicy("Invalid 'expiration' value: "+strconv.Quote(*doc.Expiration), err)
	}
	for _, c := range *doc.Conditions {
		if err := p.addCondition(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// addCondition adds one condition: {"field": "value"} (one or more eq),
// ["eq"|"starts-with", "$field", "value"], or ["content-length-range", min, max].
func (p *postPolicy) addCondition(raw json.RawMessage) error {
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		for k, v := range obj {
			s, ok := v.(string)
			if !ok {
				return errInvalidPolicy("Invalid Simple-Condition: value must be a string.", nil)
			}
			p.conds = append(p.conds, policyCond{op: "eq", field: strings.ToLower(strings.TrimPrefix(k, "$")), value: s,
				raw: fmt.Sprintf(`["eq", "$%s", %q]`, k, s)})
		}
		return nil
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 3 {
		return errInvalidPolicy("Invalid Condition: must be an object or an array of three elements.", err)
	}
	var op string
	if err := json.Unmarshal(arr[0], &op); err != nil {
		return errInvalidPolicy("Invalid Condition: the operator must be a string.", err)
	}
	switch op = strings.ToLower(op); op {
	case "content-length-range":
		return p.addRange(arr[1], arr[2])
	case "eq", "starts-with":
		var field, value string
		if json.Unmarshal(arr[1], &field) != nil || json.Unmarshal(arr[2], &value) != nil || !strings.HasPrefix(field, "$") {
			return errInvalidPolicy(`Invalid Condition: want ["`+op+`", "$field", "value"].`, nil)
		}
		p.conds = append(p.conds, policyCond{op: op, field: strings.ToLower(field[1:]), value: value,
			raw: fmt.Sprintf(`[%q, %q, %q]`, op, field, value)})
		return nil
	}
	return errInvalidPolicy("Invalid Condition: unknown operator "+strconv.Quote(op)+".", nil)
}

// addRange sets content-length-range; S3 takes its bounds as numbers or
// numeric strings.
func (p *postPolicy) addRange(lo, hi json.RawMessage) error {
	min, err1 := policyInt(lo)
	max, err2 := policyInt(hi)
	if err1 != nil || err2 != nil || min < 0 || max < min {
		return errInvalidPolicy("Invalid content-length-range.", nil)
	}
	p.hasRange, p.min, p.max = true, min, max
	return nil
}

func policyInt(raw json.RawMessage) (int64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	}
	var n int64
	err := json.Unmarshal(raw, &n)
	return n, err
}

// notCovered are fields a policy need not name: the signature and what it
// is computed with (the signature authenticates them), the file, and what
// S3 tells clients to prefix with x-ignore-.
var notCovered = map[string]bool{
	"policy": true, "x-amz-signature": true, "signature": true, "awsaccesskeyid": true, "file": true,
	"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true,
}

// check checks the form's fields (with key after ${filename}, and bucket the
// request's) against every condition, then that no field went unnamed, and
// then the file's size against content-length-range, all before anything is
// stored.
func (p *postPolicy) check(now time.Time, fields map[string]string, size int64) error {
	if now.After(p.expiration) {
		return errPolicyDenied("Policy expired.")
	}
	covered := map[string]bool{}
	for _, c := range p.conds {
		covered[c.field] = true
		if !c.holds(fields[c.field]) {
			return errPolicyDenied("Policy Condition failed: " + c.raw)
		}
	}
	var extra []string
	for name := range fields {
		if !covered[name] && !notCovered[name] && !strings.HasPrefix(name, "x-ignore-") && name != "bucket" {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return errPolicyDenied("Extra input fields: " + strings.Join(extra, ", "))
	}
	return p.checkSize(size)
}

// holds reports whether value meets c. A Content-Type starts-with holds
// for a comma-separated list only if every type in it does, as on S3.
func (c policyCond) holds(value string) bool {
	if c.op == "eq" {
		return value == c.value
	}
	if c.field == "content-type" && strings.Contains(value, ",") {
		for v := range strings.SplitSeq(value, ",") {
			if !strings.HasPrefix(strings.TrimSpace(v), c.value) {
				return false
			}
		}
		return true
	}
	return strings.HasPrefix(value, c.value)
}

// checkSize applies content-length-range, and S3's limit for one object.
func (p *postPolicy) checkSize(size int64) error {
	switch {
	case size > maxPutObjectSize || (p.hasRange && size > p.max):
		return newS3Error("EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed size", nil)
	case p.hasRange && size < p.min:
		return newS3Error("EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed size", nil)
	}
	return nil
}

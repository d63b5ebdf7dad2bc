// The template functions the gate resolves, on a small template of their own: conditions made
// of other conditions, statements a condition leaves out, Fn::Sub's list form.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { readTemplate, rolePolicies } from '../template.mjs';

const TEXT = `
Parameters:
  Arns: { Type: CommaDelimitedList, Default: "" }
  More: { Type: CommaDelimitedList, Default: "" }
  Max: { Type: Number, Default: 0 }
  Name: { Type: String, Default: bed }
Conditions:
  HasArns: !Not [!Equals [!Join ["", !Ref Arns], ""]]
  HasMore: !Not [!Equals [!Join ["", !Ref More], ""]]
  HasAny: !Or [!Condition HasArns, !Condition HasMore]
  IsManaged: !Not [!Equals [!Ref Max, "0"]]
  Both: !And [!Condition HasAny, !Condition IsManaged]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns:
        - !If [IsManaged, !Ref Managed, !Ref AWS::NoValue]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - !If
                - HasAny
                - Sid: OnArns
                  Effect: Allow
                  Action: s3:GetObject
                  Resource: !If
                    - HasMore
                    - !Split [",", !Join [",", [!Join [",", !Ref Arns], !Join [",", !Ref More]]]]
                    - !Ref Arns
                - !Ref AWS::NoValue
              - Sid: Always
                Effect: Allow
                Action: s3:ListBucket
                Resource: !Sub
                  - "arn:aws:s3:::\${Bucket}-\${!Literal}"
                  - Bucket: !If [Both, !Sub "\${Name}-both", !Join ["-", [!Ref Name, plain]]]
        - !If
          - IsManaged
          - PolicyName: managed-only
            PolicyDocument:
              Version: "2012-10-17"
              Statement: [{ Sid: Grow, Effect: Allow, Action: s3:PutObject, Resource: "*" }]
          - !Ref AWS::NoValue
  Managed:
    Type: AWS::IAM::ManagedPolicy
    Condition: IsManaged
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement: [{ Sid: FromManaged, Effect: Allow, Action: s3:DeleteObject, Resource: "*" }]
  Conditional:
    Type: AWS::IAM::Role
    Condition: IsManaged
    Properties:
      Policies:
        - PolicyName: q
          PolicyDocument: { Version: "2012-10-17", Statement: [{ Effect: Allow, Action: s3:GetObject, Resource: "*" }] }
`;

const dir = mkdtempSync(join(tmpdir(), 'npp-template-'));
const path = join(dir, 'template.yaml');
writeFileSync(path, TEXT);
const template = readTemplate(path);

const stack = (parameters) => ({ parameters, accountId: '123456789012', region: 'us-west-2',
  stackName: 's', refs: {}, attributes: {} });
const statements = (parameters, role = 'Role') => Object.fromEntries(rolePolicies(template, role, stack(parameters))
  .flatMap(({ policy }) => policy.Statement.map((s) => [s.Sid, s])));

test('a statement !If leaves out is dropped from its list; conditions name conditions', () => {
  const none = statements({ Arns: [''] });
  assert.deepEqual(Object.keys(none), ['Always']);
  assert.deepEqual(Object.keys(statements({ Arns: [] })), ['Always']);
  assert.deepEqual(statements({ Arns: ['arn:a'] }).OnArns.Resource, ['arn:a']);
  assert.deepEqual(statements({ Arns: ['arn:a'], More: ['arn:b'] }).OnArns.Resource, ['arn:a', 'arn:b']);
});

test('Fn::Sub\'s list form resolves its variables, nested intrinsics and ${!Literal} too', () => {
  assert.equal(statements({}).Always.Resource, 'arn:aws:s3:::bed-plain-${Literal}');
  assert.equal(statements({ Arns: ['arn:a'], Max: '2' }).Always.Resource, 'arn:aws:s3:::bed-both-${Literal}');
});

test('parameters are text, whatever JSON type a registration gives', () => {
  assert.deepEqual(Object.keys(statements({ Max: 0 })), ['Always']);
  assert.deepEqual(Object.keys(statements({ Max: 2 })), ['Always', 'Grow', 'FromManaged']);
});

test('policies and roles a condition leaves out are not there', () => {
  assert.deepEqual(Object.keys(statements({ Max: '1' })), ['Always', 'Grow', 'FromManaged']);
  assert.deepEqual(rolePolicies(template, 'Conditional', stack({})), []);
  assert.equal(rolePolicies(template, 'Conditional', stack({ Max: '1' })).length, 1);
});

test('a Resource an empty list parameter leaves empty is refused, as IAM would', () => {
  // No Arns but More: the Join of both starts with an empty member.
  assert.throws(() => statements({ Arns: [''], More: ['arn:b'] }), /OnArns resolves to Resource \["","arn:b"\]/);
});

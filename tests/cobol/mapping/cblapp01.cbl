      * Interface of the sample application: four output fields.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CBLAPP01.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
       01 WS-X PIC X(5).
       LINKAGE SECTION.
       01 LK-DATETIME PIC X(20).
       01 LK-PGMNAME  PIC X(10).
       01 LK-HOSTNAME PIC X(20).
       01 LK-COUNTER  PIC 9(10).
       PROCEDURE DIVISION USING LK-DATETIME LK-PGMNAME
                                LK-HOSTNAME LK-COUNTER.
           MOVE "CBLAPP01" TO LK-PGMNAME.
           GOBACK.
